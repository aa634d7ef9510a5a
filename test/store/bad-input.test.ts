import { createHash } from 'node:crypto';
import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { cached, InvalidKeyError, InvalidOptionError } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';

const { newCache } = cacheFixture('store_bad_input');

describe('PostgresCache refuses bad input with a typed error', () => {
  it('a list of keys or entries that is not one', async () => {
    const cache = newCache();
    for (const keys of ['k', null, 42] as unknown as string[][]) {
      await expect(cache.getMany(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.hasMany(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.deleteMany(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.deleteWrapped(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.setMany(keys as never)).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(cache.deleteWrapped([42] as unknown as string[])).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it('a key PostgreSQL would not store is refused, never answered with the L1 entry of another key', async () => {
    const cache = newCache({ namespace: 'unstorable' });
    await cache.init();
    const long = 'x'.repeat(500);
    // L1 names a long key by its UTF-8's digest: a lone surrogate and U+FFFD are the same bytes there.
    await cache.set(`unstorable:${long}\uFFFD`, 'the other key');
    expect(await cache.get(`unstorable:${long}\uFFFD`)).toBe('the other key');
    await expect(cache.get(`unstorable:${long}\uD800`)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.has(`unstorable:${long}\uD800`)).rejects.toBeInstanceOf(InvalidKeyError);
    // A short key that starts with NUL reads, in L1, as the id of a long key's digest.
    const digest = createHash('sha256').update(`unstorable:${long}\uFFFD`).digest('hex');
    await expect(cache.get(`\u0000${digest}`)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.has(`\u0000${digest}`)).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it('a wrap() ttl that cannot even be turned into text, and the value stays', async () => {
    const cache = newCache({ namespace: 'hostile-ttl' });
    const keyv = new Keyv({ store: cache, namespace: 'hostile-ttl' });
    expect(await cache.wrap('k', async () => 'first')).toBe('first');
    const ttl = Object.create(null) as number;
    await expect(cache.wrap('k', async () => 'second', { ttl })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cache.set('hostile-ttl:k', 'x', ttl)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(await keyv.get('k')).toBe('first');
  });

  it("cached()'s default key refuses arguments JSON cannot hold, and never runs the function for them", async () => {
    const cache = newCache();
    let runs = 0;
    const square = cached(
      async (n: bigint) => {
        runs++;
        return Number(n * n);
      },
      { cache, name: 'square' },
    );
    await expect(square(3n)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(square.invalidate(3n)).rejects.toBeInstanceOf(InvalidKeyError);
    expect(runs).toBe(0);
    await square.close();
  });

  it("cached()'s default key refuses arguments JSON would write as something else, so no two calls share a result", async () => {
    const cache = newCache();
    let runs = 0;
    const size = cached(
      async (items: unknown) => {
        runs++;
        return items instanceof Set || items instanceof Map ? items.size : -1;
      },
      { cache, name: 'size' },
    );
    // JSON writes both as {}: the second would be answered with the first's result.
    await expect(size(new Set([1, 2]))).rejects.toThrow(/Set, which JSON writes as \{\}.*options\.key/);
    await expect(size(new Map())).rejects.toBeInstanceOf(InvalidKeyError);
    for (const argument of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      () => 1,
      Symbol('s'),
      { nested: [new Set()] },
      /^a/,
      new Error('one'),
      new Number(Number.NaN),
    ]) {
      await expect(size(argument)).rejects.toBeInstanceOf(InvalidKeyError);
    }
    expect(runs).toBe(0);
    // JSON writes these as what they box.
    expect(await size(new Number(5) as unknown)).toBe(-1);
    expect(await size(new String('') as unknown)).toBe(-1);
    await size.close();
  });
});
