import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, PostgresAdapter } from '../../src/index.js';
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

  // Keyv's clear() does not say which Keyv calls: the store would clear whichever set its namespace last,
  // so users.clear() emptied the other Keyv's namespace and kept its own.
  it('refuses clear() through either Keyv, and loses nothing', async () => {
    const store = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    const users = new Keyv({ store, namespace: 'people', throwOnErrors: true });
    const plain = new Keyv({ store, namespace: undefined, throwOnErrors: true });
    await users.set('1', 'alice');
    await plain.set('2', 'bob');
    for (const keyv of [users, plain]) {
      await expect(keyv.clear()).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(keyv.clear()).rejects.toThrow(/namespaces "people", \(none\) share this store/);
    }
    expect(await users.get('1')).toBe('alice');
    expect(await plain.get('2')).toBe('bob');
    // Said outright, the namespace is no guess.
    await store.clearNamespace('people');
    expect(await users.get('1')).toBeUndefined();
    expect(await plain.get('2')).toBe('bob');
    const listed: string[] = [];
    for await (const [key] of store.iterator('')) listed.push(key);
    expect(listed).toContain('2');
    await store.disconnect();
  });
});
