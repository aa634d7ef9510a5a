import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, PostgresAdapter, type PostgresAdapterOptions } from '../../src/index.js';
import { databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('call_order');

function supplied(max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max, allowExitOnIdle: true });
  pool.on('error', () => undefined);
  return pool;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An adapter on its own pool, on this file's schema. */
const ownAdapter = (options: PostgresAdapterOptions = {}) =>
  new PostgresAdapter({ connectionString: databaseUrl(), schema, sweepInterval: 0, ...options });

beforeAll(() => PostgresAdapter.initDb({ connectionString: databaseUrl(), schema }));
afterAll(() => dropSchema(schema));

describe('calls on one key take effect in the order they were made', () => {
  it('across connections: a delete, a get or a clear made after a set, without awaiting it', async () => {
    const pool = supplied(4);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'across';
    await adapter.init();
    const outOfOrder: string[] = [];
    for (let round = 0; round < 60; round++) {
      const key = `across:k${round}`;
      const [, , read] = await Promise.all([adapter.set(key, 'v'), adapter.delete(key), adapter.get(key)]);
      if (read !== undefined) outOfOrder.push(`get after delete in round ${round}`);
      if ((await adapter.get(key)) !== undefined)
        outOfOrder.push(`set outlived its delete in round ${round}`);
      const [, seen] = await Promise.all([adapter.set(`${key}:seen`, 'v'), adapter.get(`${key}:seen`)]);
      if (seen !== 'v') outOfOrder.push(`get missed the set before it in round ${round}`);
    }
    await Promise.all([adapter.set('across:c', 'v'), adapter.clear()]);
    expect(await adapter.get('across:c')).toBeUndefined();
    expect(outOfOrder).toEqual([]);
    await adapter.disconnect();
    await pool.end();
  });

  it('a tag eviction or a tagged write orders against plain calls on its keys', async () => {
    const { PostgresCache, CacheTags } = await import('../../src/index.js');
    const pool = supplied(1);
    const cache = new PostgresCache({ pool, schema, sweepInterval: 0, notifications: false, l1: false });
    const tags = new CacheTags(cache);
    await cache.init();
    const busy = cache.adapter.execute('SELECT pg_sleep(0.2)', [], 'busy');
    const calls = [
      tags.set('t:a', 'tagged', { tags: ['t'], namespace: 'tags' }),
      cache.adapter.writeEntry('tags', 't:a', 'plain'),
      tags.set('t:b', 'tagged', { tags: ['u'], namespace: 'tags' }),
      tags.evict(['u']),
      cache.adapter.writeEntry('tags', 't:b', 'after the eviction'),
    ];
    await Promise.all([busy, ...calls]);
    expect((await cache.adapter.readEntry('tags', 't:a'))?.value).toBe('plain');
    expect((await cache.adapter.readEntry('tags', 't:b'))?.value).toBe('after the eviction');
    await cache.disconnect();
    await pool.end();
  });

  it('clear() of an adapter several Keyv namespaces share lands before a set made after it', async () => {
    const adapter = ownAdapter({ poolSize: 1 });
    adapter.namespace = 'shared-a';
    await adapter.set('shared-a:k', 'old');
    adapter.namespace = 'shared-b';
    await adapter.set('shared-b:k', 'old');
    await Promise.all([adapter.clear(), adapter.set('shared-b:k', 'new')]);
    expect(await adapter.get('shared-b:k')).toBe('new');
    expect(await adapter.get('shared-a:k')).toBeUndefined();
    await adapter.disconnect();
  });
});

describe('a call that must wait for an earlier one on its key', () => {
  it('holds back no call on another key, while connections are free', async () => {
    const adapter = ownAdapter({ poolSize: 4, connectionTimeout: 1000 });
    adapter.namespace = 'blocked';
    await adapter.set('blocked:k', 'v0');
    await adapter.set('blocked:j', 'J');
    // Another session holds k's row: the set of k waits for it, and the get and delete of k after it wait too.
    const holder = new pg.Client({ connectionString: databaseUrl() });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "${schema}".pgcache_entries WHERE key = 'blocked:k' FOR UPDATE`);
    const onK = [adapter.set('blocked:k', 'v1'), adapter.get('blocked:k'), adapter.delete('blocked:k')];
    const started = performance.now();
    const others: Array<string | undefined> = [];
    for (let i = 0; i < 8; i++) others.push(await adapter.get('blocked:j'));
    const tookMs = performance.now() - started;
    await holder.query('COMMIT');
    await holder.end();
    expect(others).toEqual(Array(8).fill('J'));
    expect(tookMs).toBeLessThan(900);
    expect(await Promise.all(onK)).toEqual([true, 'v1', true]);
    await adapter.disconnect();
  });

  it('keeps the order of calls made while the tables are being prepared, and right after', async () => {
    for (let round = 0; round < 5; round++) {
      const adapter = ownAdapter({ poolSize: 2 });
      const key = `preparing:k${round}`;
      const ready = adapter.init();
      let late: Promise<unknown> | undefined;
      // Made once the preparation has ended, yet after the set made during it.
      void ready.then(() => {
        late = adapter.set(key, 'late');
      });
      await adapter.set(key, 'early');
      await ready;
      await late;
      expect(await adapter.get(key)).toBe('late');
      await adapter.disconnect();
    }
  });

  it('takes the keys a call was given, whatever the caller then does with its array', async () => {
    const adapter = ownAdapter({ poolSize: 1, connectionTimeout: 1000 });
    await adapter.setMany([
      { key: 'reused:a', value: '1' },
      { key: 'reused:b', value: '2' },
    ]);
    const busy = adapter.execute('SELECT pg_sleep(0.1)', [], 'busy');
    const keys = ['reused:a', 'reused:b'];
    const deleting = adapter.deleteMany(keys);
    keys.length = 0;
    keys.push('reused:elsewhere');
    await busy;
    expect(await deleting).toBe(true);
    expect(await adapter.getMany(['reused:a', 'reused:b'])).toEqual([undefined, undefined]);
    // Nothing it claimed is left behind to hold later calls on those keys back.
    expect(await adapter.set('reused:a', 'again')).toBe(true);
    await adapter.disconnect();
  });

  it('an iterator sees a set made before it', async () => {
    const adapter = ownAdapter({ poolSize: 4 });
    adapter.namespace = 'iterated';
    await adapter.init();
    for (let round = 0; round < 20; round++) {
      void adapter.set(`iterated:k${round}`, 'v');
      const keys: string[] = [];
      for await (const [key] of adapter.iterator('iterated')) keys.push(key);
      expect(keys).toContain(`iterated:k${round}`);
    }
    await adapter.disconnect();
  });
});

describe('waiting for a connection', () => {
  it("counts a write's ttl from the call, also while the pool's connections are held outside the adapter", async () => {
    const pool = supplied(1);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.init();
    const held = await pool.connect();
    setTimeout(() => held.release(), 700);
    await adapter.set('pool-wait', 'v', 500);
    expect(await adapter.get('pool-wait')).toBeUndefined();
    await adapter.disconnect();
    await pool.end();
  });

  it('gives a call merged into a waiting statement its own connectionTimeout, not what that statement has left', async () => {
    const adapter = ownAdapter({ poolSize: 1, connectionTimeout: 600 });
    await adapter.set('deadline:a', 'A');
    await adapter.set('deadline:b', 'B');
    const busy = adapter.execute('SELECT pg_sleep(0.9)', [], 'busy');
    const first = adapter.get('deadline:a').catch((error: unknown) => error);
    await sleep(450);
    // Joins the read of a, which gives up at 600 ms; the connection frees at 900 ms, within this call's 600.
    const second = adapter.get('deadline:b');
    await busy;
    expect(await first).toBeInstanceOf(ConnectionError);
    expect(await second).toBe('B');
    await adapter.disconnect();
  });

  it.each(['its own pool', 'a supplied pool'])(
    'disconnect() lets the calls made before it that wait for a connection finish, on %s',
    async (which) => {
      const pool = which === 'a supplied pool' ? supplied(1) : undefined;
      const adapter = pool
        ? new PostgresAdapter({ pool, schema, sweepInterval: 0 })
        : ownAdapter({ poolSize: 1 });
      const key = `before-disconnect:${which}`;
      await adapter.init();
      const busy = adapter.execute('SELECT pg_sleep(0.2)', [], 'busy');
      const queued = adapter.set(key, 'kept');
      await adapter.disconnect();
      // A supplied pool's owner may end it as soon as disconnect() returns.
      await pool?.end();
      await busy;
      expect(await queued).toBe(true);
      const reader = ownAdapter();
      expect(await reader.get(key)).toBe('kept');
      await reader.disconnect();
    },
  );

  it('merges no more key text into one read than into one write', async () => {
    const pool = supplied(1);
    let statements = 0;
    pool.on('acquire', () => {
      statements++;
    });
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.init();
    const busy = adapter.execute('SELECT pg_sleep(0.2)', [], 'busy');
    // Two keys of 33 M characters: together past the 64 M a merged statement may carry.
    const keys = ['x', 'y'].map((letter) => letter.repeat(33 * 1024 * 1024));
    await sleep(50);
    statements = 0;
    const reads = await Promise.all([busy, ...keys.map((key) => adapter.get(key))]);
    expect(reads.slice(1)).toEqual([undefined, undefined]);
    expect(statements).toBe(2);
    await adapter.disconnect();
    await pool.end();
  });
});
