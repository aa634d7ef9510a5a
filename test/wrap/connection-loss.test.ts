import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCache } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';
import { lockOf, poolIsIdle } from './support.js';

const schema = uniqueSchema('wrap_connection_loss');
const pool = adminPool();
let cache: PostgresCache;

beforeAll(async () => {
  await PostgresCache.initDb({ connectionString: databaseUrl(), schema });
  cache = new PostgresCache({ connectionString: databaseUrl(), schema, sweepInterval: 0, namespace: 'lost' });
  await cache.init();
});
afterAll(async () => {
  await cache.disconnect();
  await dropSchema(schema);
  await pool.end();
});

/** Ends the sessions holding a fill lock, as a server restart or an operator would. */
async function terminateLockHolders(lock: [number, number]): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>(
    `SELECT pid FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid
        AND objid = ($2::bigint & 4294967295)::oid AND objsubid = 2`,
    lock,
  );
  for (const { pid } of rows) await pool.query('SELECT pg_terminate_backend($1)', [pid]);
  return rows.length;
}

describe('the lock holder loses its connection mid-loader', () => {
  it('the caller gets a typed error, the process lives on, and the next call fills the key', async () => {
    let terminated = 0;
    const failed = cache.wrap('k', async () => {
      terminated = await terminateLockHolders(lockOf(schema, 'lost', 'k'));
      // Give the dead socket time to raise its 'error' on the checked-out client.
      await new Promise((resolve) => setTimeout(resolve, 200));
      return 'lost value';
    });
    await expect(failed).rejects.toMatchObject({ code: 'ERR_PGCACHE_CONNECTION' });
    expect(terminated).toBe(1);
    expect(await cache.wrap('k', async () => 'second try')).toBe('second try');
    expect(poolIsIdle(cache.adapter.pool)).toBe(true);
  });
});

describe("lockMode 'transaction' under a server-wide idle-in-transaction timeout", () => {
  it('keeps the lock for as long as the loader runs: one load, both callers answered', async () => {
    const options = {
      connectionString: databaseUrl(),
      schema,
      sweepInterval: 0,
      namespace: 'idle',
      wrap: { lockMode: 'transaction' as const },
      poolConfig: { options: '-c idle_in_transaction_session_timeout=200' },
    };
    const first = new PostgresCache(options);
    const second = new PostgresCache(options);
    try {
      await Promise.all([first.init(), second.init()]);
      let runs = 0;
      const loader = (who: string) => async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 600));
        return who;
      };
      const answers = Promise.all([
        first.wrap('k', loader('first')),
        new Promise((resolve) => setTimeout(resolve, 50)).then(() => second.wrap('k', loader('second'))),
      ]);
      // Whichever takes the lock first (50 ms is no promise on a busy machine), the other gets its value.
      const [one, other] = await answers;
      expect(other).toBe(one);
      expect(['first', 'second']).toContain(one);
      expect(runs).toBe(1);
    } finally {
      await Promise.all([first.disconnect(), second.disconnect()]);
    }
  });
});
