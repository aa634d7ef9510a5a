import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/index.js';
import { runScript } from '../support/child.js';
import { adminPool, dropSchema, eventually, sleep, uniqueSchema } from '../support/database.js';
import { listenOn } from '../support/notifications.js';

const schema = uniqueSchema('expiry');
const pool = adminPool(6);
const rowCount = async () =>
  Number((await pool.query(`SELECT count(*) FROM "${schema}".pgcache_entries`)).rows[0].count);

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('expiry on every read path', () => {
  it('get, has, getMany, hasMany and the iterator all treat an expired row as missing', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'reads';
    await adapter.set('reads:short', 'v', 30);
    await adapter.set('reads:long', 'w', 60_000);
    await sleep(60);
    expect(await adapter.get('reads:short')).toBeUndefined();
    expect(await adapter.has('reads:short')).toBe(false);
    expect(await adapter.getMany(['reads:short', 'reads:long'])).toEqual([undefined, 'w']);
    expect(await adapter.hasMany(['reads:short', 'reads:long'])).toEqual([false, true]);
    const iterated: string[] = [];
    for await (const [key] of adapter.iterator('reads')) iterated.push(key);
    expect(iterated).toEqual(['reads:long']);
    // Deleting an expired row is deleting something already gone.
    expect(await adapter.delete('reads:short')).toBe(false);
    // The row stays until swept: filtering, not deletion, is what makes reads right.
    await adapter.set('reads:short2', 'v', 1);
    await sleep(10);
    expect(
      Number(
        (await pool.query(`SELECT count(*) FROM "${schema}".pgcache_entries WHERE key = 'reads:short2'`))
          .rows[0].count,
      ),
    ).toBe(1);
    await adapter.disconnect();
  });

  it('Keyv.has() honours expiry through the adapter', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const keyv = new Keyv({ store: adapter, namespace: 'keyvhas' });
    // Long enough that a slow machine still asks while the row is live.
    await keyv.set('k', 'v', 1000);
    expect(await keyv.has('k')).toBe(true);
    await sleep(1100);
    expect(await keyv.has('k')).toBe(false);
    await adapter.disconnect();
  });

  it('deleteMany answers true only when every key was live: an expired or cleared row was not there', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'delmany';
    const rowsOf = async () =>
      Number(
        (await pool.query(`SELECT count(*) FROM "${schema}".pgcache_entries WHERE key LIKE 'delmany:%'`))
          .rows[0].count,
      );
    await adapter.setMany([
      { key: 'delmany:a', value: 'v' },
      { key: 'delmany:b', value: 'v' },
    ]);
    expect(await adapter.deleteMany(['delmany:a', 'delmany:b'])).toBe(true);
    await adapter.set('delmany:live', 'v');
    await adapter.set('delmany:short', 'v', 30);
    await sleep(60);
    expect(await adapter.deleteMany(['delmany:live', 'delmany:short'])).toBe(false);
    // Both rows are deleted all the same.
    expect(await rowsOf()).toBe(0);
    await adapter.set('delmany:cleared', 'v');
    await adapter.clear();
    await adapter.set('delmany:after', 'v');
    expect(await adapter.deleteMany(['delmany:cleared', 'delmany:after'])).toBe(false);
    expect(await rowsOf()).toBe(0);
    await adapter.disconnect();
  });
});

describe('a ttl that has run out before the write lands', () => {
  it('a negative ttl stores the entry expired: it replaces the old value, as Keyv over a Map reads it', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const keyv = new Keyv({ store: adapter, namespace: 'past' });
    const map = new Keyv({ store: new Map(), namespace: 'past' });
    for (const store of [keyv, map]) {
      await store.set('k', 'old');
      expect(await store.set('k', 'new', -5)).toBe(true);
      expect(await store.get('k')).toBeUndefined();
      expect(await store.has('k')).toBe(false);
    }
    await adapter.setMany([
      { key: 'past:a', value: '"a"' },
      { key: 'past:b', value: '"b"', ttl: Number.NEGATIVE_INFINITY },
    ]);
    expect(await adapter.getMany(['past:a', 'past:b'])).toEqual(['"a"', undefined]);
    await adapter.disconnect();
  });

  it('counts from the call: a write that waited for a connection does not live longer in the table', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, maxInFlight: 1 });
    adapter.namespace = 'waited';
    const busy = adapter.execute('SELECT pg_sleep(0.4)', [], 'sleep');
    const single = adapter.set('waited:one', 'v', 250);
    const many = adapter.setMany([{ key: 'waited:many', value: 'v', ttl: 250 }]);
    await Promise.all([busy, single, many]);
    // Both calls returned some 400 ms after they were made: their 250 ms are over.
    expect(await adapter.hasMany(['waited:one', 'waited:many'])).toEqual([false, false]);
    await adapter.disconnect();
  });
});

describe('the sweeper', () => {
  it('removes expired rows in bounded batches and leaves live ones', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, sweepBatchSize: 1000 });
    adapter.namespace = 'batches';
    const expired = Array.from({ length: 2500 }, (_, i) => ({
      key: `batches:dead-${i}`,
      value: 'x',
      ttl: 1,
    }));
    await adapter.setMany(expired);
    await adapter.set('batches:alive', 'y', 60_000);
    await sleep(20);
    const before = await rowCount();
    const removed = await adapter.sweep();
    // Earlier tests in this file leave a few expired rows too: the sweeper covers the whole table.
    expect(removed).toBeGreaterThanOrEqual(2500);
    expect(await rowCount()).toBe(before - removed);
    expect(await adapter.hasMany(expired.map((entry) => entry.key))).toEqual(expired.map(() => false));
    expect(await adapter.get('batches:alive')).toBe('y');
    await adapter.disconnect();
  });

  it('reclaims the rows a clear hid soon after it, not at the next interval', async () => {
    // An interval no test waits for: only the run a clear starts can delete the rows.
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 60_000 });
    adapter.namespace = 'reclaim';
    await adapter.setMany(Array.from({ length: 50 }, (_, i) => ({ key: `reclaim:${i}`, value: 'v' })));
    const namespaceRows = async () =>
      Number(
        (await pool.query(`SELECT count(*) FROM "${schema}".pgcache_entries WHERE namespace = 'reclaim'`))
          .rows[0].count,
      );
    expect(await namespaceRows()).toBe(50);
    await adapter.clear();
    // What is left is the clear marker.
    expect(await eventually(async () => (await namespaceRows()) === 1, 5000)).toBe(true);
    await adapter.disconnect();
  });

  it('keeps the table bounded under churn of short-TTL keys', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 50, sweepBatchSize: 500 });
    adapter.namespace = 'churn';
    await adapter.init();
    const baseline = await rowCount();
    const samples: number[] = [];
    let written = 0;
    while (written < 4000) {
      await adapter.setMany(
        Array.from({ length: 100 }, (_, i) => ({ key: `churn:${written + i}`, value: 'v', ttl: 20 })),
      );
      written += 100;
      if (written % 1000 === 0) samples.push((await rowCount()) - baseline);
      // Paced, so that the churn spans many sweeps however fast the machine writes.
      await sleep(25);
    }
    // Without the sweeper the table would hold every row written.
    expect(Math.max(...samples)).toBeLessThan(written / 2);
    expect(await eventually(async () => (await rowCount()) - baseline < 300)).toBe(true);
    await adapter.disconnect();
  });

  it('runs in one process at a time: a held sweep lock makes another sweep a no-op', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'lock';
    await adapter.set('lock:k', 'v', 1);
    await sleep(10);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      // Take the same lock the sweep function takes, by calling it in this open transaction.
      await holder.query(`SELECT "${schema}".pgcache_sweep_expired(0)`);
      expect(await adapter.sweep()).toBe(0);
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    expect(await adapter.sweep()).toBeGreaterThanOrEqual(1);
    await adapter.disconnect();
  });

  it('sends no change events: expiry is not a change listeners must act on', async () => {
    // Set up first: its trigger, created now, announces itself on the channel.
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, changeEvents: true });
    await adapter.init();
    adapter.namespace = 'quiet';
    const listener = await listenOn(`${schema}_pgcache_events`);
    await adapter.setMany(Array.from({ length: 50 }, (_, i) => ({ key: `quiet:${i}`, value: 'v', ttl: 1 })));
    await listener.drain();
    const setEvents = listener.received.length;
    expect(await adapter.sweep()).toBeGreaterThanOrEqual(50);
    await listener.drain();
    await listener.end();
    await adapter.disconnect();
    expect(setEvents).toBe(50);
    expect(listener.received.length).toBe(50);
  });

  it('stops on disconnect, and never keeps a process alive', async () => {
    const result = await runScript('idle-adapter.ts', [schema], {}, 15_000);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^swept \d+/);
  });
});
