import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheTags, PostgresAdapter, PostgresCache } from '../../src/index.js';
import { adminPool, dropSchema, eventually, sleep, uniqueSchema } from '../support/database.js';
import { listenOn } from '../support/notifications.js';

const schema = uniqueSchema('sweep_clear_race');
const pool = adminPool(6);
const table = `"${schema}".pgcache_entries`;
const markerOf = async (namespace: string) =>
  (
    await pool.query<{ value: string; version: string }>(
      `SELECT value, version FROM ${table} WHERE namespace = $1 AND key_hash = '\\x'::bytea`,
      [namespace],
    )
  ).rows;
const opened: PostgresAdapter[] = [];

function newAdapter(namespace: string) {
  const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
  adapter.namespace = namespace;
  opened.push(adapter);
  return adapter;
}

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await Promise.all(opened.map((adapter) => adapter.disconnect()));
  await dropSchema(schema);
  await pool.end();
});

describe('the sweeper and clear()', () => {
  it('a write that drew its version before a clear and commits after a sweep stays cleared', async () => {
    const adapter = newAdapter('late');
    const writer = await pool.connect();
    try {
      await writer.query('BEGIN');
      const written = await adapter.writeEntry(
        'late',
        'late:k',
        'written before the clear',
        undefined,
        writer,
      );
      const cleared = await adapter.clearNamespace('late');
      expect(written).toBeLessThan(cleared);
      // The sweeper sees nothing under the marker (the write is not committed yet).
      await adapter.sweep();
      await writer.query('COMMIT');
    } finally {
      await writer.query('ROLLBACK').catch(() => undefined);
      writer.release();
    }
    expect(await adapter.get('late:k')).toBeUndefined();
    // The marker stays (settled once nothing is left under it), and keeps hiding that write.
    await adapter.sweep();
    expect(await markerOf('late')).toHaveLength(1);
    expect(await adapter.get('late:k')).toBeUndefined();
  });

  it('a clear after a settled marker re-arms it, and the sweeper then deletes what it hides', async () => {
    const adapter = newAdapter('again');
    await adapter.set('again:k', 'v');
    await adapter.clear();
    await adapter.sweep();
    expect((await markerOf('again'))[0]?.value).toBe('settled');
    await adapter.set('again:k', 'v2');
    expect(await adapter.get('again:k')).toBe('v2');
    await adapter.clear();
    expect((await markerOf('again'))[0]?.value).toBe('');
    expect(await adapter.sweep()).toBe(1);
    expect((await markerOf('again'))[0]?.value).toBe('settled');
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE namespace = 'again'`);
    expect(rows[0].n).toBe(1);
  });

  it("an UPDATE of anyone's that does not set the version does not undo a clear", async () => {
    const adapter = newAdapter('foreign');
    await adapter.set('foreign:k', 'cleared');
    await adapter.clear();
    expect(await adapter.get('foreign:k')).toBeUndefined();
    await pool.query(`UPDATE ${table} SET expires_at = NULL WHERE namespace = 'foreign'`);
    expect(await adapter.get('foreign:k')).toBeUndefined();
    expect(await markerOf('foreign')).toHaveLength(1);
  });

  it('a new value written after a clear, before any sweep, is there: by the tag index and by outside SQL', async () => {
    const cache = new PostgresCache({
      pool,
      schema,
      sweepInterval: 0,
      namespace: 'rewritten',
      notifications: false,
    });
    try {
      const tags = new CacheTags(cache);
      await tags.set('rewritten:k', 'v1', { tags: ['t'] });
      await cache.clear();
      expect(await cache.get('rewritten:k')).toBeUndefined();
      await tags.set('rewritten:k', 'v2', { tags: ['t'] });
      expect(await cache.adapter.readEntry('rewritten', 'rewritten:k')).toMatchObject({ value: 'v2' });
      await cache.clear();
      // An upsert that sets no version: the trigger gives it one, as to any new write.
      await pool.query(
        `INSERT INTO ${table} (namespace, key, value) VALUES ('rewritten', 'rewritten:k', 'v3')
         ON CONFLICT (namespace, key_hash) DO UPDATE SET value = EXCLUDED.value`,
      );
      expect(await cache.adapter.readEntry('rewritten', 'rewritten:k')).toMatchObject({ value: 'v3' });
    } finally {
      await cache.disconnect();
    }
  });

  it("clear and the sweeper leave the caller's postgres_cache.silent as they found it", async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, changeEvents: true });
    opened.push(adapter);
    await adapter.init();
    const channel = adapter.options.notifyChannel;
    const listener = await listenOn(channel);
    const writer = await pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`SET LOCAL postgres_cache.silent = 'on'`);
      await writer.query(`SELECT "${schema}".pgcache_clear_namespace('quiet', $1)`, [channel]);
      await writer.query(`SELECT "${schema}".pgcache_sweep_expired(10)`);
      // Still silent: this write sends nothing.
      await writer.query(`INSERT INTO ${table} (namespace, key, value) VALUES ('quiet', 'quiet:k', 'v')`);
      await writer.query('COMMIT');
    } finally {
      writer.release();
    }
    await listener.drain();
    await listener.end();
    expect(listener.payloads().map((payload) => JSON.parse(payload).op)).toEqual(['clear']);
  });

  it('does not deadlock with a setMany that holds some of the expired rows it sweeps', async () => {
    const adapter = newAdapter('locks');
    const digest = (key: string) => createHash('sha256').update(key).digest();
    const keys = Array.from({ length: 8 }, (_, i) => `locks:k${i}`);
    // Written in descending digest order, so ctid order and digest order disagree.
    for (const key of [...keys].sort((a, b) => Buffer.compare(digest(b), digest(a)))) {
      await adapter.set(key, 'old', 1);
    }
    await sleep(20);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      // setMany locks in digest order: it takes the first keys, then waits on the one held here.
      const [held] = [...keys].sort((a, b) => Buffer.compare(digest(a), digest(b))).slice(-1);
      await holder.query(`SELECT 1 FROM ${table} WHERE namespace = 'locks' AND key = $1 FOR UPDATE`, [held]);
      const writing = adapter.setMany(keys.map((key) => ({ key, value: 'new' })));
      const blocked = await eventually(async () => {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND query LIKE '%unnest%' AND query LIKE $1`,
          [`%${schema}%`],
        );
        return rows[0].n > 0;
      });
      expect(blocked).toBe(true);
      // The sweeper must pass over the rows setMany holds rather than wait on them.
      const swept = await Promise.race([adapter.sweep(), sleep(10_000).then(() => 'waited' as const)]);
      expect(swept).not.toBe('waited');
      await holder.query('COMMIT');
      await writing;
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
    expect(await adapter.getMany(keys)).toEqual(keys.map(() => 'new'));
  });
});
