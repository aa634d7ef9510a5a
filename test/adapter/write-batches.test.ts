import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, PostgresAdapter } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('write_batches');
const pool = adminPool();

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

/** One connection: the first write runs alone, and the ones issued with it wait and merge into one statement. */
function singleConnectionAdapter() {
  const own = new pg.Pool({ connectionString: databaseUrl(), max: 1, allowExitOnIdle: true });
  const adapter = new PostgresAdapter({ pool: own, schema, sweepInterval: 0, maxInFlight: 1 });
  const close = async () => {
    await adapter.disconnect();
    await own.end();
  };
  return { adapter, close };
}

describe('a write merged with others', () => {
  it('fails alone when its ttl is bad: the writes it would have shared a statement with are stored', async () => {
    const { adapter, close } = singleConnectionAdapter();
    await adapter.init();
    const outcomes = await Promise.allSettled(
      [60_000, 60_000, '5' as unknown as number, 60_000, Number.NaN, 60_000].map((ttl, i) =>
        adapter.writeEntry('bad_ttl', `k${i}`, `v${i}`, ttl),
      ),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidOptionError);
    const stored = await adapter.readEntries('bad_ttl', ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    expect(stored.map((entry) => entry?.value)).toEqual(['v0', 'v1', undefined, 'v3', undefined, 'v5']);
    await close();
  });

  it('stores a ttl too large to count (1e300, Number.MAX_VALUE) as no expiry, and so do its neighbours', async () => {
    const { adapter, close } = singleConnectionAdapter();
    await adapter.init();
    const ttls = [60_000, 60_000, 1e300, 60_000, Number.MAX_VALUE];
    await Promise.all(ttls.map((ttl, i) => adapter.writeEntry('huge_ttl', `k${i}`, `v${i}`, ttl)));
    const stored = await adapter.readEntries('huge_ttl', ['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(stored.map((entry) => entry?.value)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    expect(stored[2]?.ttlLeft).toBeUndefined();
    expect(stored[1]?.ttlLeft).toBeGreaterThan(50_000);
    await close();
  });
});

/** Two keys of `namespace`, in the order of their digests: the order statements on many rows lock them in. */
function keysInLockOrder(namespace: string): [string, string] {
  const digest = (key: string) => createHash('sha256').update(`${namespace}:${key}`).digest();
  const [low, high] = ['a', 'b'].sort((x, y) => Buffer.compare(digest(x), digest(y)));
  return [`${namespace}:${low}`, `${namespace}:${high}`];
}

/** Resolves once a statement on this file's schema waits for a lock. */
async function waitsForALock(): Promise<boolean> {
  return eventually(async () => {
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
      [schema],
    );
    return rows[0].n > 0;
  });
}

describe('writing many rows in one statement', () => {
  it('locks them in one order, so it waits for another writer instead of deadlocking with it', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const [first, second] = keysInLockOrder('lockorder');
    await adapter.writeEntries('lockorder', [
      { key: first, value: '0' },
      { key: second, value: '0' },
    ]);
    const other = await pool.connect();
    const table = `"${schema}".pgcache_entries`;
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE ${table} SET value = 'other' WHERE key = $1`, [first]);
      // Locking in the order given would take `second`, then wait for `first`.
      const batch = adapter.writeEntries('lockorder', [
        { key: second, value: 'batch' },
        { key: first, value: 'batch' },
      ]);
      batch.catch(() => undefined); // awaited below; a failure must not also surface as unhandled
      expect(await waitsForALock()).toBe(true);
      // The other writer now needs `second`: a deadlock if the batch holds it.
      await other.query(`UPDATE ${table} SET value = 'other' WHERE key = $1`, [second]);
      await other.query('COMMIT');
      expect((await batch).every(Number.isSafeInteger)).toBe(true);
      const stored = await adapter.readEntries('lockorder', [first, second]);
      expect(stored.map((entry) => entry?.value)).toEqual(['batch', 'batch']);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
      await adapter.disconnect();
    }
  });
});

describe('deleting many rows in one statement', () => {
  it('locks them in the order writers do, whatever order the rows lie in, so it cannot deadlock with one', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const [first, second] = keysInLockOrder('deleteorder');
    // Written one at a time, `second` first: a scan of the table meets it before `first`.
    await adapter.writeEntries('deleteorder', [{ key: second, value: '0' }]);
    await adapter.writeEntries('deleteorder', [{ key: first, value: '0' }]);
    const other = await pool.connect();
    const table = `"${schema}".pgcache_entries`;
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE ${table} SET value = 'other' WHERE key = $1`, [first]);
      const removal = adapter.removeEntries('deleteorder', [second, first]);
      removal.catch(() => undefined); // awaited below; a failure must not also surface as unhandled
      expect(await waitsForALock()).toBe(true);
      // The other writer now needs `second`: a deadlock if the deletion holds it.
      await other.query(`UPDATE ${table} SET value = 'other' WHERE key = $1`, [second]);
      await other.query('COMMIT');
      expect((await removal).map((entry) => entry.key).sort()).toEqual([first, second].sort());
      expect(await adapter.readEntries('deleteorder', [first, second])).toEqual([undefined, undefined]);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
      await adapter.disconnect();
    }
  });
});
