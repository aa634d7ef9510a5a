import type pg from 'pg';
import type { PostgresCache } from '../../src/index.js';
import { fillLockKey } from '../../src/store/wrap/advisory-lock.js';

/** A loader that counts its runs. */
export function counted<T>(produce: () => T | Promise<T>) {
  const loader = async () => {
    loader.runs++;
    return produce();
  };
  loader.runs = 0;
  return loader;
}

/** A promise to hold a loader at, and the function that lets it go. */
export function gate() {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * Takes a holder slot of `cache` (its only one, with a pool of two) with a fill of `key` that runs until `release()`;
 * resolves once that fill's loader runs. `done` is the fill's wrap(), which answers `key`.
 */
export async function holdSlot(cache: PostgresCache, key: string) {
  const slot = gate();
  const running = gate();
  const done = cache.wrap(key, async () => {
    running.open();
    await slot.opened;
    return key;
  });
  await running.opened;
  return { release: slot.open, done };
}

/** The fill lock of a key as wrap() takes it (Keyv's `namespace:key` in that namespace). */
export function lockOf(schema: string, namespace: string, key: string): [number, number] {
  return fillLockKey(`${schema}.pgcache_entries`, namespace, `${namespace}:${key}`);
}

/** How many sessions hold (or wait for) this fill lock now. */
export async function lockHolders(pool: pg.Pool, lock: [number, number]): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks
     WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND classid = $1::bigint::oid AND objid = ($2::bigint & 4294967295)::oid AND objsubid = 2`,
    lock,
  );
  return rows[0]?.n ?? 0;
}

/** True when the pool has no connection checked out and nobody queued for one. */
export const poolIsIdle = (pool: pg.Pool) => pool.waitingCount === 0 && pool.idleCount === pool.totalCount;
