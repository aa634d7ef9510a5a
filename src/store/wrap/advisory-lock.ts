import type pg from 'pg';
import { checkOut } from '../../adapter/checkout.js';
import { LOCK_CLASS, lockId } from '../../adapter/names.js';
import { toCacheError } from '../../errors.js';
import type { LockMode } from './options.js';

/** The two-int advisory lock of one entry's fill: the library's fill class, then a hash of table, namespace and key. */
export function fillLockKey(table: string, namespace: string, key: string): [number, number] {
  return [LOCK_CLASS.fill, lockId(`${table}\u0000${namespace}\u0000${key}`)];
}

/** A fill lock held on a connection of its own; every read and write of the holder goes through `client`. */
export interface HeldLock {
  readonly client: pg.PoolClient;
  /** Makes the holder's writes visible (COMMIT in transaction mode), frees the lock, returns the connection. */
  commit(): Promise<void>;
  /** Frees the lock and drops what the holder wrote if it can (ROLLBACK), returns the connection. Never throws. */
  abandon(): Promise<void>;
}

/**
 * Takes the fill lock if no other session holds it, without waiting: undefined when one does. The
 * connection is taken from the pool only for the attempt, and kept only by a holder.
 */
export async function tryFillLock(
  pool: pg.Pool,
  key: [number, number],
  mode: LockMode,
  timeoutMs: number,
): Promise<HeldLock | undefined> {
  const client = await connect(pool);
  const run = (text: string, values?: unknown[]) =>
    client.query({ text, values, query_timeout: timeoutMs } as pg.QueryConfig);
  let locked: boolean;
  // The server's idle_session_timeout (PostgreSQL 14+) as this session had it, when the lock lifts it.
  let idleTimeout: string | undefined;
  try {
    // The transaction idles for as long as the loader runs: a server-wide idle timeout must not end it. Its
    // re-read under the lock must see a previous holder's commit, whatever the database's default isolation.
    if (mode === 'transaction') {
      await run('BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL idle_in_transaction_session_timeout = 0');
      locked =
        (await run('SELECT pg_try_advisory_xact_lock($1, $2) AS locked', key)).rows[0]?.locked === true;
      if (!locked) await run('ROLLBACK');
    } else {
      const { rows } = await run(
        `SELECT pg_try_advisory_lock($1, $2) AS locked, current_setting('idle_session_timeout', true) AS idle`,
        key,
      );
      locked = rows[0]?.locked === true;
      // The session idles for as long as the loader runs, outside any transaction: a server's idle timeout
      // would end it, freeing the lock for another process to load too, and failing this holder's write.
      const idle = rows[0]?.idle as string | null | undefined;
      if (locked && idle && idle !== '0') {
        await run(`SELECT set_config('idle_session_timeout', '0', false)`);
        idleTimeout = idle;
      }
    }
  } catch (error) {
    // The connection's state is unknown: destroying it ends its session, and with it any lock it holds.
    client.release(true);
    throw toCacheError(error, 'taking a fill lock');
  }
  if (!locked) {
    client.release();
    return undefined;
  }
  return mode === 'transaction' ? transactionLock(client, run) : sessionLock(client, run, key, idleTimeout);
}

type Run = (text: string, values?: unknown[]) => Promise<pg.QueryResult>;

function sessionLock(
  client: pg.PoolClient,
  run: Run,
  key: [number, number],
  idleTimeout: string | undefined,
): HeldLock {
  let done = false;
  const unlock = async () => {
    if (done) return;
    done = true;
    try {
      const { rows } =
        idleTimeout === undefined
          ? await run('SELECT pg_advisory_unlock($1, $2) AS unlocked', key)
          : await run(
              `SELECT pg_advisory_unlock($1, $2) AS unlocked, set_config('idle_session_timeout', $3, false)`,
              [...key, idleTimeout],
            );
      // Not ours to unlock (should not happen): ending the session is the sure way to free it.
      client.release(rows[0]?.unlocked === true ? undefined : true);
    } catch {
      client.release(true);
    }
  };
  return { client, commit: unlock, abandon: unlock };
}

function transactionLock(client: pg.PoolClient, run: Run): HeldLock {
  let done = false;
  return {
    client,
    async commit() {
      if (done) return;
      done = true;
      try {
        await run('COMMIT');
        client.release();
      } catch (error) {
        client.release(true);
        throw toCacheError(error, 'committing a fill');
      }
    },
    async abandon() {
      if (done) return;
      done = true;
      try {
        await run('ROLLBACK');
        client.release();
      } catch {
        client.release(true);
      }
    },
  };
}

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await checkOut(pool);
  } catch (error) {
    throw toCacheError(error, 'connecting for a fill lock');
  }
}
