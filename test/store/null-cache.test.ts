import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import {
  DisconnectedError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidValueError,
  NullCache,
  type PostgresCache,
} from '../../src/index.js';

/** What an application calls on a PostgresCache besides the Keyv store calls: a NullCache must take it too. */
type ApplicationCalls = Pick<
  PostgresCache,
  'init' | 'coherent' | 'stats' | 'clearNamespace' | 'deleteWrapped' | 'clearWrapped' | 'wrap' | 'getOrSet'
>;

describe('NullCache', () => {
  it('accepts every call and keeps nothing', async () => {
    const keyv = new Keyv({ store: new NullCache() });
    expect(await keyv.set('k', 'v')).toBe(true);
    expect(await keyv.get('k')).toBeUndefined();
    expect(await keyv.get(['k', 'j'])).toEqual([undefined, undefined]);
    expect(await keyv.has('k')).toBe(false);
    expect(await keyv.has(['k', 'j'])).toEqual([false, false]);
    expect(await keyv.delete('k')).toBe(false);
    expect(await keyv.delete(['k', 'j'])).toBe(false);
    // As Keyv answers for no keys over any store, and as PostgresCache does.
    expect(await keyv.delete([])).toBe(true);
    await keyv.clear();
    await keyv.disconnect();
  });

  it("stands in for a PostgresCache in an application's own calls too", async () => {
    // The type-check fails here if one of these is missing or differs in shape.
    const cache: ApplicationCalls & NullCache = new NullCache();
    await cache.init();
    expect(cache.coherent).toBe(true);
    await cache.set('k', '"v"');
    expect(cache.stats.l1).toEqual({ hits: 0, misses: 0, size: 0, bytes: 0 });
    expect(cache.stats.listener.connected).toBe(false);
    await cache.clearNamespace('any');
    expect(await cache.deleteWrapped(['k'])).toBe(false);
    await cache.clearWrapped();
    await expect(cache.deleteWrapped(['a\u0000b'])).rejects.toBeInstanceOf(InvalidKeyError);
    // A string where a list of keys belongs, as PostgresCache refuses it.
    for (const call of [
      () => cache.deleteWrapped('abc' as unknown as string[]),
      () => cache.deleteMany('abc' as unknown as string[]),
      () => cache.getMany('abc' as unknown as string[]),
      () => cache.hasMany('abc' as unknown as string[]),
      () => cache.setMany('abc' as unknown as []),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await cache.disconnect();
    await expect(cache.init()).rejects.toBeInstanceOf(DisconnectedError);
    await expect(cache.clearNamespace('any')).rejects.toBeInstanceOf(DisconnectedError);
  });

  // Code tested against NullCache must not first fail in production.
  it('refuses what PostgresCache refuses, with the same typed errors', async () => {
    const cache = new NullCache();
    await expect(cache.set('a\u0000b', '"v"')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.get('\uD800')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.getMany(['ok', 5 as unknown as string])).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.clearNamespace('a\u0000b')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.set('k', { not: 'a string' })).rejects.toBeInstanceOf(InvalidValueError);
    await expect(cache.setMany([{ key: 'k', value: '"v"', ttl: Number.NaN }])).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    await expect(cache.wrap('k', async () => 10n)).rejects.toBeInstanceOf(InvalidValueError);
    await expect(cache.wrap('k', async () => Symbol('s'))).rejects.toBeInstanceOf(InvalidValueError);
    await expect(cache.wrap('k', async () => 1, { ttl: () => Number.NaN })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    expect(await cache.wrap('k', async () => ({ fine: true }))).toEqual({ fine: true });
    expect(await cache.wrap('k', async () => undefined)).toBeUndefined();
  });

  it('is closed after disconnect(), as PostgresCache is', async () => {
    const cache = new NullCache();
    await cache.disconnect();
    await expect(cache.get('k')).rejects.toBeInstanceOf(DisconnectedError);
    await expect(cache.set('k', '"v"')).rejects.toBeInstanceOf(DisconnectedError);
    await expect(cache.clear()).rejects.toBeInstanceOf(DisconnectedError);
    await expect(cache.wrap('k', async () => 1)).rejects.toBeInstanceOf(DisconnectedError);
    await expect(cache.iterator().next()).rejects.toBeInstanceOf(DisconnectedError);
    await cache.disconnect();
  });
});

describe('NullCache.wrap()', () => {
  it('starts nothing for a caller that has already given up, as PostgresCache.wrap() does', async () => {
    let runs = 0;
    const signal = AbortSignal.abort(new Error('gave up'));
    const loader = async () => {
      runs++;
      throw new Error('loader failed');
    };
    await expect(new NullCache().wrap('k', loader, { signal })).rejects.toThrow('gave up');
    expect(runs).toBe(0);
  });

  it('answers raw as PostgresCache.wrap() does: the expiry the ttl gives, none for undefined', async () => {
    const cache = new NullCache();
    const raw = await cache.wrap('k', async () => 'v', { ttl: 60_000, raw: true });
    expect(raw.value).toBe('v');
    expect(Math.abs((raw.expires ?? 0) - (Date.now() + 60_000))).toBeLessThan(10_000);
    expect(await cache.wrap('k', async () => 'v', { raw: true })).toEqual({ value: 'v', expires: undefined });
    // What PostgresCache stores with no expiry, it reports with none.
    for (const ttl of [Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 10]) {
      expect(await cache.wrap('k', async () => 'v', { ttl, raw: true })).toEqual({
        value: 'v',
        expires: undefined,
      });
    }
    const expired = await cache.wrap('k', async () => 'v', { ttl: -5000, raw: true });
    expect(expired.expires).toBeLessThanOrEqual(Date.now());
    expect(expired.expires).toBeGreaterThan(Date.now() - 1000);
    expect(await cache.wrap('k', async () => undefined, { ttl: 60_000, raw: true })).toEqual({
      value: undefined,
      expires: undefined,
    });
  });
});
