import { describe, expect, it } from 'vitest';
import { QueryError } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { repeatableReadUrl, sleep } from '../support/database.js';
import { counted } from './support.js';

// A database (or role) whose default isolation is REPEATABLE READ runs each statement outside a transaction
// block at that level: a session-mode holder's write of a row another transaction changed after its snapshot
// fails with a serialization failure, and is a statement of its own that can simply run again (and then finds
// the row changed: the change wins). A transaction-mode holder's write is part of its transaction (at READ
// COMMITTED): it waits, and sees the change.
const { schema, pool, newCache } = cacheFixture('wrap_rolled_back');

describe.each(['session', 'transaction'] as const)(
  'a holder writing a row another transaction changes (%s locks, REPEATABLE READ by default)',
  (lockMode) => {
    it('every caller gets the loaded value, and the change that came first stays', async () => {
      const namespace = `rr-${lockMode}`;
      const cache = newCache({ connectionString: repeatableReadUrl(), namespace, wrap: { lockMode } });
      const { rows } = await cache.adapter.pool.query('SHOW default_transaction_isolation');
      expect(rows[0]?.default_transaction_isolation).toBe('repeatable read');
      // An expired row: the fill finds no value and loads, and the other transaction has a row to update.
      const storedKey = `${namespace}:k`;
      await cache.set(storedKey, JSON.stringify({ value: 'expired', expires: Date.now() + 1 }), 1);
      await sleep(20);
      const other = await pool.connect();
      let committed: Promise<unknown> | undefined;
      try {
        const loader = async () => {
          await other.query('BEGIN');
          await other.query(
            `UPDATE "${schema}".pgcache_entries SET value = $1, expires_at = NULL WHERE namespace = $2 AND key = $3`,
            [JSON.stringify({ value: 'theirs' }), namespace, storedKey],
          );
          // Commits once the holder's write has taken its snapshot and queued on the row's lock.
          committed = sleep(200).then(() => other.query('COMMIT'));
          return 'ours';
        };
        const calls = [cache.wrap('k', loader), cache.wrap('k', loader)];
        expect(await Promise.all(calls)).toEqual(['ours', 'ours']);
        await committed;
      } finally {
        other.release();
      }
      const stored = await pool.query(
        `SELECT value FROM "${schema}".pgcache_entries WHERE namespace = $1 AND key = $2`,
        [namespace, storedKey],
      );
      expect(JSON.parse(stored.rows[0]?.value).value).toBe('theirs');
      expect(JSON.parse((await cache.get(storedKey)) as string).value).toBe('theirs');
    });
  },
);

describe('a transaction-mode holder whose COMMIT fails', () => {
  it('rejects its callers, and neither PostgreSQL nor its L1 keeps what it wrote', async () => {
    const namespace = 'commit-refused';
    // A deferred constraint trigger: the holder's write succeeds, and its COMMIT fails.
    await pool.query(`CREATE FUNCTION "${schema}".refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
    await pool.query(`CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON "${schema}".pgcache_entries
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.namespace = '${namespace}')
      EXECUTE FUNCTION "${schema}".refuse_at_commit()`);
    const cache = newCache({ namespace, wrap: { lockMode: 'transaction' } });
    await cache.init();
    const first = counted(() => 'rolled back');
    await expect(cache.wrap('k', first)).rejects.toBeInstanceOf(QueryError);
    expect(first.runs).toBe(1);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM "${schema}".pgcache_entries WHERE namespace = $1`,
      [namespace],
    );
    expect(rows[0]?.n).toBe(0);
    // Nothing was kept in L1 either: the next call loads again.
    expect(await cache.get(`${namespace}:k`)).toBeUndefined();
    await pool.query(`DROP TRIGGER refuse_at_commit ON "${schema}".pgcache_entries`);
    const second = counted(() => 'committed');
    expect(await cache.wrap('k', second)).toBe('committed');
    expect(second.runs).toBe(1);
  });
});
