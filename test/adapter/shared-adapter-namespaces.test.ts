import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/index.js';
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
    await plain.clear();
    expect(await users.get('2')).toBe('bob');
    expect(await plain.get('3')).toBeUndefined();
    await store.disconnect();
  });
});
