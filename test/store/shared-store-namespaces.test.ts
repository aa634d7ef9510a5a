import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';

const { newCache } = cacheFixture('shared_store', 2);

// Keyv's clear() does not say which Keyv calls: acting on whichever set the store's namespace last,
// users.clear() emptied the sessions and kept the users, and wrap() stored under the sessions.
describe('one PostgresCache under several Keyv namespaces', () => {
  it('refuses clear() through either Keyv, and clearNamespace() clears exactly one', async () => {
    const cache = newCache();
    await cache.init();
    const users = new Keyv({ store: cache, namespace: 'users', throwOnErrors: true });
    const sessions = new Keyv({ store: cache, namespace: 'sessions', throwOnErrors: true });
    await users.set('1', { name: 'Ava' });
    await sessions.set('s1', { user: 1 });
    for (const keyv of [users, sessions]) {
      await expect(keyv.clear()).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(keyv.clear()).rejects.toThrow(/namespaces "users", "sessions" share this store/);
    }
    expect(await users.get('1')).toEqual({ name: 'Ava' });
    expect(await sessions.get('s1')).toEqual({ user: 1 });

    await cache.clearNamespace('users');
    expect(await users.get('1')).toBeUndefined();
    expect(await sessions.get('s1')).toEqual({ user: 1 });
    const listed: string[] = [];
    for await (const [key] of cache.iterator('users')) listed.push(key);
    expect(listed).toEqual([]);
  });

  it("wrap() refuses to guess, and stores in the cache's namespace option when it has one", async () => {
    const guessing = newCache();
    await guessing.init();
    new Keyv({ store: guessing, namespace: 'users' });
    new Keyv({ store: guessing, namespace: 'sessions' });
    await expect(guessing.wrap('user:9', async () => 'Bo')).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(guessing.clearWrapped()).rejects.toThrow(/set the cache's namespace option/);

    const told = newCache({ namespace: 'app' });
    await told.init();
    new Keyv({ store: told, namespace: 'users' });
    new Keyv({ store: told, namespace: 'sessions' });
    expect(await told.wrap('user:9', async () => 'Bo')).toBe('Bo');
    const app = new Keyv({ store: told, namespace: 'app' });
    expect(await app.get('user:9')).toBe('Bo');
  });

  it('one Keyv on the store: clear() and wrap() act on its namespace, as before', async () => {
    const cache = newCache();
    await cache.init();
    const users = new Keyv({ store: cache, namespace: 'solo' });
    await users.set('1', 'one');
    expect(await cache.wrap('user:2', async () => 'two')).toBe('two');
    expect(await users.get('user:2')).toBe('two');
    await users.clear();
    expect(await users.get('1')).toBeUndefined();
    expect(await users.get('user:2')).toBeUndefined();
  });
});
