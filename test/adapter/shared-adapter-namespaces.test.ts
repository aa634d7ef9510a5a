import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidValueError, PostgresAdapter, PostgresCache } from '../../src/index.js';
import { adminPool, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('shared_namespaces');
const pool = adminPool();

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('one adapter shared by a namespaced Keyv and a Keyv without namespace', () => {
  it("keeps the namespaced Keyv's keys in its namespace, whichever Keyv came last", async () => {
    const store = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const users = new Keyv({ store, namespace: 'users' });
    await users.set('1', 'alice');
    // Sets store.namespace to undefined: the last namespace set is no longer the users'.
    const plain = new Keyv({ store, namespace: undefined });
    expect(await users.get('1')).toBe('alice');
    await users.set('2', 'bob');
    await plain.set('3', 'carol');
    const { rows } = await pool.query(
      `SELECT namespace, key FROM "${schema}".pgcache_entries ORDER BY namespace, key`,
    );
    expect(rows).toEqual([
      { namespace: '', key: '3' },
      { namespace: 'users', key: 'users:1' },
      { namespace: 'users', key: 'users:2' },
    ]);
    await store.disconnect();
  });

  // Keyv's clear() does not say which Keyv calls: clearing whichever set the store's namespace last,
  // users.clear() emptied the other Keyv's namespace and kept its own entries, stale.
  it("clear() through either Keyv empties every namespace the store was given, the caller's included", async () => {
    const store = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const users = new Keyv({ store, namespace: 'people' });
    const plain = new Keyv({ store, namespace: undefined });
    for (const keyv of [users, plain]) {
      await users.set('1', 'alice');
      await plain.set('2', 'bob');
      await keyv.clear();
      expect(await users.get('1')).toBeUndefined();
      expect(await plain.get('2')).toBeUndefined();
    }
    // Said outright, one namespace is cleared and no other.
    await users.set('1', 'alice');
    await plain.set('2', 'bob');
    await store.clearNamespace('people');
    expect(await users.get('1')).toBeUndefined();
    expect(await plain.get('2')).toBe('bob');
    await store.disconnect();
  });
});

describe('many Keyv instances on one store', () => {
  it('take no more listeners than Keyv allows itself: Node prints no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const stores = [
      new PostgresAdapter({ pool, schema, sweepInterval: 0 }),
      new PostgresCache({ pool, schema, sweepInterval: 0 }),
    ];
    try {
      for (const store of stores) {
        for (let i = 0; i < 20; i++) new Keyv({ store, namespace: `n${i}` });
        expect(store.listenerCount('error')).toBeGreaterThanOrEqual(20);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await Promise.all(stores.map((store) => store.disconnect()));
    }
  });
});

// A Keyv without a namespace may send keys that carry a namespaced Keyv's prefix: over a Map, `ns:42` is one
// key whichever Keyv names it. A batch used to send every key to the namespace of its first.
describe.each([
  ['PostgresAdapter', () => new PostgresAdapter({ pool, schema, sweepInterval: 0 })],
  ['PostgresCache', () => new PostgresCache({ pool, schema, sweepInterval: 0 })],
] as const)('%s shared by a namespaced Keyv and one without namespace', (_name, open) => {
  it("batch calls send each key where a call of it alone does, whatever the batch's first key", async () => {
    const store = open();
    try {
      const users = new Keyv({ store, namespace: 'routed' });
      const plain = new Keyv({ store, namespace: undefined });
      await plain.clear();
      const written = await plain.setMany([
        { key: 'plain', value: 'P' },
        { key: 'routed:42', value: 'Z' },
      ]);
      expect(written).toEqual([true, true]);
      expect(await users.get('42')).toBe('Z');
      expect(await plain.get('routed:42')).toBe('Z');
      expect(await plain.getMany(['plain', 'routed:42'])).toEqual(['P', 'Z']);
      expect(await plain.getMany(['routed:42', 'plain', 'absent'])).toEqual(['Z', 'P', undefined]);
      expect(await plain.hasMany(['plain', 'routed:42', 'absent'])).toEqual([true, true, false]);
      expect(await plain.deleteMany(['plain', 'routed:42'])).toBe(true);
      expect(await users.get('42')).toBeUndefined();
      expect(await plain.get('plain')).toBeUndefined();
      expect(await plain.deleteMany(['plain', 'routed:42'])).toBe(false);
      // One part refused: no part of the batch is written.
      await expect(
        store.setMany([
          { key: 'plain', value: 'fine' },
          { key: 'routed:43', value: 'bad\u0000' },
        ]),
      ).rejects.toThrow(InvalidValueError);
      expect(await plain.get('plain')).toBeUndefined();
    } finally {
      await store.disconnect();
    }
  });
});
