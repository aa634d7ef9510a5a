import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/index.js';
import { adminPool, dropSchema, uniqueSchema } from '../support/database.js';
import { listenOn } from '../support/notifications.js';
import { parityScript } from '../support/parity-script.js';

const schema = uniqueSchema('semantics');
const pool = adminPool();

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('behaves like Keyv over its own Map store', () => {
  it('answers a script of calls exactly as the Map store does', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const expected = await parityScript(new Keyv({ store: new Map(), namespace: 'parity' }));
    const actual = await parityScript(new Keyv({ store: adapter, namespace: 'parity' }));
    expect(actual).toEqual(expected);
    await adapter.disconnect();
  });
});

describe('iterator()', () => {
  it('pages through a namespace larger than iterationBatchSize, yielding each live entry once', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, iterationBatchSize: 7 });
    adapter.namespace = 'pages';
    const keys = Array.from({ length: 50 }, (_, i) => `pages:k${i}`);
    await adapter.setMany(keys.map((key) => ({ key, value: `v-${key}` })));
    // Expired rows of the namespace are skipped, not yielded.
    await adapter.setMany(
      Array.from({ length: 10 }, (_, i) => ({ key: `pages:dead${i}`, value: 'x', ttl: 1 })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const iterated: Array<[string, string]> = [];
    for await (const entry of adapter.iterator('pages')) iterated.push(entry);
    expect(iterated.map(([key]) => key).sort()).toEqual([...keys].sort());
    expect(iterated.every(([key, value]) => value === `v-${key}`)).toBe(true);
    await adapter.disconnect();
  });
});

describe('clear()', () => {
  it('removes exactly its namespace, even when other namespaces look like prefixes or LIKE patterns', async () => {
    const namespaces = ['app', 'app:sub', 'ap_', 'a%', 'App'];
    const keyvs = new Map<string, Keyv>();
    for (const namespace of namespaces) {
      const keyv = new Keyv({ store: new PostgresAdapter({ pool, schema, sweepInterval: 0 }), namespace });
      await keyv.setMany(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: namespace })));
      keyvs.set(namespace, keyv);
    }
    await keyvs.get('app')?.clear();
    // Gone for every reader at once, through every read path...
    for (const [namespace, keyv] of keyvs) {
      const expected = namespace === 'app' ? undefined : namespace;
      expect(await keyv.get('k3')).toBe(expected);
      expect(await keyv.has('k4')).toBe(expected !== undefined);
      expect(await keyv.get(['k0', 'k19'])).toEqual([expected, expected]);
    }
    const iterated: unknown[] = [];
    for await (const entry of keyvs.get('app')?.iterator?.('app') ?? []) iterated.push(entry);
    expect(iterated).toEqual([]);
    // ...and deleted by the sweeper afterwards; the clear marker stays, one row.
    const sweeper = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    expect(await sweeper.sweep()).toBeGreaterThanOrEqual(20);
    await sweeper.disconnect();
    const { rows } = await pool.query(
      `SELECT namespace, count(*)::int AS n FROM "${schema}".pgcache_entries
       WHERE namespace = ANY ($1) GROUP BY namespace ORDER BY namespace`,
      [namespaces],
    );
    expect(rows).toEqual(
      [...namespaces].sort().map((namespace) => ({ namespace, n: namespace === 'app' ? 1 : 20 })),
    );
  });

  it('keeps what is written after it, and a write after it is not swept', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'after';
    await adapter.set('after:old', 'old');
    await adapter.set('after:both', 'before');
    await adapter.clear();
    await adapter.set('after:both', 'after');
    await adapter.set('after:new', 'new');
    expect(await adapter.getMany(['after:old', 'after:both', 'after:new'])).toEqual([
      undefined,
      'after',
      'new',
    ]);
    expect(await adapter.delete('after:old')).toBe(false);
    await adapter.sweep();
    expect(await adapter.getMany(['after:old', 'after:both', 'after:new'])).toEqual([
      undefined,
      'after',
      'new',
    ]);
    // A second clear hides the later writes too.
    await adapter.clear();
    expect(await adapter.getMany(['after:both', 'after:new'])).toEqual([undefined, undefined]);
    await adapter.disconnect();
  });

  it('sends one event for the whole namespace, not one per row', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'bulk';
    await adapter.setMany(Array.from({ length: 1000 }, (_, i) => ({ key: `bulk:${i}`, value: 'v' })));
    const listener = await listenOn(`${schema}_pgcache_events`);
    await adapter.clear();
    await listener.drain();
    await listener.end();
    await adapter.disconnect();
    expect(listener.payloads().map((payload) => JSON.parse(payload))).toEqual([
      expect.objectContaining({ op: 'clear', ns: 'bulk' }),
    ]);
  });
});

describe('versions', () => {
  it('grow with every write, whoever makes it, and survive delete and re-insert', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const v1 = await adapter.writeEntry('ver', 'k', 'one');
    const v2 = await adapter.writeEntry('ver', 'k', 'two');
    await adapter.removeEntry('ver', 'k');
    const v3 = await adapter.writeEntry('ver', 'k', 'three');
    await pool.query(`UPDATE "${schema}".pgcache_entries SET value = 'four' WHERE namespace = 'ver'`);
    const v4 = (await adapter.readEntry('ver', 'k'))?.version ?? 0;
    expect(v2).toBeGreaterThan(v1);
    expect(v3).toBeGreaterThan(v2);
    expect(v4).toBeGreaterThan(v3);
    await adapter.disconnect();
  });

  it('grow in commit order when many connections write one key at once', async () => {
    const listener = await listenOn(`${schema}_pgcache_events`);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, changeEvents: true });
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 16 }, (_, i) => adapter.writeEntry('contended', 'k', `w${round}-${i}`)),
      );
    }
    const final = await adapter.readEntry('contended', 'k');
    await listener.drain();
    await listener.end();
    await adapter.disconnect();
    const versions = listener
      .payloads()
      .map((payload) => JSON.parse(payload))
      .filter((event) => event.ns === 'contended')
      .map((event) => event.v as number);
    // Events arrive in commit order: each newer than the last, and the row holds the newest.
    expect(versions.length).toBe(80);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(final?.version).toBe(Math.max(...versions));
  });

  it('reports the time left by the database clock', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.writeEntry('ttl', 'k', 'v', 60_000);
    const entry = await adapter.readEntry('ttl', 'k');
    expect(entry?.ttlLeft).toBeGreaterThan(50_000);
    expect(entry?.ttlLeft).toBeLessThanOrEqual(60_000);
    await adapter.writeEntry('ttl', 'forever', 'v');
    expect((await adapter.readEntry('ttl', 'forever'))?.ttlLeft).toBeUndefined();
    await adapter.disconnect();
  });
});
