import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, installTableWatch, invalidateOnTableChange } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { eventually, sleep } from '../support/database.js';

const { schema, pool, newCache } = cacheFixture('shared_store', 2);

// Keyv's clear() does not say which Keyv calls. Acting on whichever set the store's namespace last,
// users.clear() emptied the sessions and left the users stale, and wrap() stored under the sessions.
describe('one PostgresCache under several Keyv namespaces', () => {
  it("clear() through either Keyv empties every namespace the store was given, the caller's included", async () => {
    const cache = newCache();
    await cache.init();
    const users = new Keyv({ store: cache, namespace: 'users' });
    const sessions = new Keyv({ store: cache, namespace: 'sessions' });
    for (const keyv of [users, sessions]) {
      await users.set('1', { name: 'Ava' });
      await sessions.set('s1', { user: 1 });
      expect(await users.get('1')).toEqual({ name: 'Ava' });
      await keyv.clear();
      expect(await users.get('1')).toBeUndefined();
      expect(await sessions.get('s1')).toBeUndefined();
    }
    await users.set('1', { name: 'Ava' });
    await sessions.set('s1', { user: 1 });
    await cache.clearNamespace('users');
    expect(await users.get('1')).toBeUndefined();
    expect(await sessions.get('s1')).toEqual({ user: 1 });
  });

  it("refuses a namespace whose keys look like another's ('a' and 'a:b'), before either loses a key", async () => {
    const cache = newCache();
    const a = new Keyv({ store: cache, namespace: 'a' });
    await a.set('b:c', 'of a');
    // Keyv would store key 'c' of 'a:b' as 'a:b:c', as it stored key 'b:c' of 'a'.
    expect(() => new Keyv({ store: cache, namespace: 'a:b' })).toThrow(InvalidOptionError);
    const ab = new Keyv({ store: newCache(), namespace: 'a:b' });
    expect(() => new Keyv({ store: ab.store, namespace: 'a' })).toThrow(InvalidOptionError);
    // Names that only start alike are fine, and 'a' still reads its key.
    const other = new Keyv({ store: cache, namespace: 'ab' });
    await other.set('c', 'of ab');
    expect([await a.get('b:c'), await other.get('c')]).toEqual(['of a', 'of ab']);
  });

  it('wrap() stores where the first Keyv reads, whatever Keyv comes later', async () => {
    const cache = newCache();
    await cache.init();
    const users = new Keyv({ store: cache, namespace: 'first' });
    expect(await cache.wrap('user:9', async () => 'Bo')).toBe('Bo');
    const later = new Keyv({ store: cache, namespace: 'later' });
    expect(await cache.wrap('user:9', async () => 'not loaded again')).toBe('Bo');
    expect(await users.get('user:9')).toBe('Bo');
    expect(await later.get('user:9')).toBeUndefined();
    await cache.deleteWrapped(['user:9']);
    expect(await users.get('user:9')).toBeUndefined();
  });

  it('a Keyv without a namespace among named ones: each reads its own, and wrap() agrees with the first', async () => {
    for (const order of ['named first', 'unnamed first'] as const) {
      const cache = newCache();
      await cache.init();
      const make = (namespace: string | undefined) => new Keyv({ store: cache, namespace });
      const [users, plain] =
        order === 'named first' ? [make('users'), make(undefined)] : [undefined, make(undefined)];
      const named = users ?? make('users');
      await named.set('1', 'B');
      await plain.set('1', 'plain');
      expect(await named.get('1')).toBe('B');
      expect(await plain.get('1')).toBe('plain');
      const first = order === 'named first' ? named : plain;
      expect(await cache.wrap('1', async () => 'loaded')).toBe(await first.get('1'));
      await first.set('1', 'changed');
      expect(await cache.wrap('1', async () => 'loaded')).toBe('changed');
      await first.delete('1');
      expect(await cache.wrap('1', async () => 'reloaded')).toBe('reloaded');
      expect(await first.get('1')).toBe('reloaded');
    }
  });

  it('a table rule on it flushes once, and then leaves wrap() entries alone', async () => {
    await pool.query(`CREATE TABLE "${schema}".people (id int PRIMARY KEY, name text)`);
    await installTableWatch(pool, { schema, table: 'people', cacheSchema: schema });
    const cache = newCache();
    await cache.init();
    new Keyv({ store: cache, namespace: 'users' });
    new Keyv({ store: cache, namespace: 'sessions' });
    const errors: Error[] = [];
    const rule = invalidateOnTableChange(cache, {
      table: 'people',
      schema,
      keys: (row) => [`user:${row.id}`],
    });
    rule.on('error', (error) => errors.push(error));
    try {
      await rule.ready;
      let loads = 0;
      const load = async () => `v${++loads}`;
      expect(await cache.wrap('user:1', load)).toBe('v1');
      await pool.query(`TRUNCATE "${schema}".people`);
      expect(await eventually(async () => (await cache.wrap('user:1', load)) === 'v2')).toBe(true);
      await sleep(1500);
      expect(await cache.wrap('user:1', load)).toBe('v2');
      expect(errors).toEqual([]);
    } finally {
      await rule.close();
    }
  });
});
