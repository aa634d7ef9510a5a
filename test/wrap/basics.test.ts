import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, InvalidOptionError, InvalidValueError, NullCache } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { eventually } from '../support/database.js';
import { counted } from './support.js';

const { schema, pool, newCache } = cacheFixture('wrap_basics');

async function rows(namespace: string) {
  const { rows } = await pool.query<{ key: string; value: string; expires_at: string | null }>(
    `SELECT key, value, expires_at FROM "${schema}".pgcache_entries WHERE namespace = $1 ORDER BY key`,
    [namespace],
  );
  return rows;
}

describe('wrap() call shapes', () => {
  it('runs the loader on a miss, then serves the cached value without it', async () => {
    const cache = newCache({ namespace: 'shapes' });
    const loader = counted(() => ({ id: 1, name: 'Ada' }));
    expect(await cache.wrap('user:1', loader)).toEqual({ id: 1, name: 'Ada' });
    expect(await cache.wrap('user:1', loader)).toEqual({ id: 1, name: 'Ada' });
    // From PostgreSQL, not L1: another instance sees it too.
    expect(await newCache({ namespace: 'shapes' }).wrap('user:1', loader)).toEqual({ id: 1, name: 'Ada' });
    expect(loader.runs).toBe(1);
    expect((await rows('shapes')).map((row) => row.key)).toEqual(['shapes:user:1']);
  });

  it('takes a ttl as a number, as a function of the value, or in an options object', async () => {
    const cache = newCache({ namespace: 'ttl-shapes' });
    const seen: unknown[] = [];
    await cache.wrap('positional', async () => 'a', 60_000);
    await cache.wrap('options', async () => 'b', { ttl: 120_000 });
    await cache.wrap(
      'function',
      async () => ({ ttl: 180_000 }),
      (value) => {
        seen.push(value);
        return value.ttl;
      },
    );
    await cache.wrap('none', async () => 'd');
    expect(seen).toEqual([{ ttl: 180_000 }]);
    const byKey = Object.fromEntries(
      (
        await pool.query<{ key: string; left: number | null }>(
          `SELECT key, (expires_at - (extract(epoch from now()) * 1000)::bigint)::int AS left
         FROM "${schema}".pgcache_entries WHERE namespace = 'ttl-shapes'`,
        )
      ).rows.map((row) => [row.key, row.left]),
    );
    expect(byKey['ttl-shapes:none']).toBeNull();
    for (const [key, ttl] of [
      ['positional', 60_000],
      ['options', 120_000],
      ['function', 180_000],
    ] as const) {
      const left = byKey[`ttl-shapes:${key}`] ?? 0;
      expect(left).toBeGreaterThan(ttl - 30_000);
      expect(left).toBeLessThanOrEqual(ttl);
    }
  });

  it('loads again once the ttl has passed', async () => {
    const cache = newCache({ namespace: 'expiry' });
    let version = 0;
    const loader = counted(() => ++version);
    expect(await cache.wrap('k', loader, 150)).toBe(1);
    expect(await eventually(async () => (await cache.wrap('k', loader, 150)) === 2)).toBe(true);
    expect(loader.runs).toBe(2);
  });

  it('resolves with { value, expires } when raw is set, as cache-manager does', async () => {
    const cache = newCache({ namespace: 'raw' });
    const before = Date.now();
    const loaded = await cache.wrap('k', async () => 'v', { ttl: 60_000, raw: true });
    expect(loaded.value).toBe('v');
    expect(loaded.expires).toBeGreaterThanOrEqual(before + 60_000);
    const cached = await newCache({ namespace: 'raw' }).wrap('k', async () => 'other', { raw: true });
    expect(cached).toEqual(loaded);
    expect(await cache.wrap('forever', async () => 1, { raw: true })).toEqual({
      value: 1,
      expires: undefined,
    });
  });

  it('getOrSet() is wrap() under another name', async () => {
    const cache = newCache({ namespace: 'get-or-set' });
    const loader = counted(() => [1, 2, 3]);
    expect(await cache.getOrSet('k', loader, { ttl: 60_000 })).toEqual([1, 2, 3]);
    expect(await cache.wrap('k', loader)).toEqual([1, 2, 3]);
    expect(await cache.getOrSet('k', loader)).toEqual([1, 2, 3]);
    expect(loader.runs).toBe(1);
  });

  it("counts the values its hits keep decoded in L1's bytes, so L1 stays within maxBytes", async () => {
    // 2 000 empty objects: 6 KB of text, several times that decoded.
    const value = () => Array.from({ length: 2000 }, () => ({}));
    const roomy = newCache({ namespace: 'decoded-bytes', l1: { max: 0, maxBytes: 10 * 1024 * 1024 } });
    await roomy.init();
    for (let i = 0; i < 10; i++) await roomy.wrap(`k${i}`, async () => value());
    const textOnly = roomy.stats.l1.bytes;
    for (let i = 0; i < 10; i++) expect(await roomy.wrap(`k${i}`, async () => [])).toHaveLength(2000);
    expect(roomy.stats.l1.size).toBe(10);
    expect(roomy.stats.l1.bytes).toBeGreaterThan(3 * textOnly);

    const maxBytes = 2 * textOnly;
    const tight = newCache({ namespace: 'decoded-bytes', l1: { max: 0, maxBytes } });
    await tight.init();
    // Ten fit as text; decoded, fewer than ten do.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 10; i++) expect(await tight.wrap(`k${i}`, async () => [])).toHaveLength(2000);
    }
    expect(tight.stats.l1.bytes).toBeLessThanOrEqual(maxBytes);
    expect(tight.stats.l1.size).toBeLessThan(10);
  });

  it('keeps a value too large to hold decoded as text, still in L1', async () => {
    // 8 000 empty objects: 48 KB of text, counted at about 96 KB, and far more decoded.
    const cache = newCache({ namespace: 'too-large-decoded', l1: { max: 0, maxBytes: 200_000 } });
    await cache.init();
    const value = Array.from({ length: 8000 }, () => ({}));
    await cache.wrap('big', async () => value);
    for (let i = 0; i < 5; i++) expect(await cache.wrap('big', async () => [])).toHaveLength(8000);
    expect(cache.stats.l1).toMatchObject({ hits: 5, size: 1 });
    expect(cache.stats.postgres.hits).toBe(0);
  });

  it('shares one loader run among concurrent callers in the process', async () => {
    const cache = newCache({ namespace: 'concurrent' });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const loader = counted(async () => {
      await gate;
      return 'shared';
    });
    const calls = Array.from({ length: 25 }, () => cache.wrap('k', loader));
    await eventually(() => loader.runs > 0);
    release();
    expect(await Promise.all(calls)).toEqual(Array(25).fill('shared'));
    expect(loader.runs).toBe(1);
  });
});

describe('values', () => {
  it('caches null: only undefined means missing', async () => {
    const cache = newCache({ namespace: 'null' });
    const loader = counted(() => null);
    expect(await cache.wrap('k', loader)).toBeNull();
    expect(await cache.wrap('k', loader)).toBeNull();
    expect(await newCache({ namespace: 'null' }).wrap('k', loader)).toBeNull();
    expect(loader.runs).toBe(1);
    expect(await new Keyv({ store: newCache(), namespace: 'null' }).get('k')).toBeNull();
  });

  it('returns undefined from the loader without caching it', async () => {
    const cache = newCache({ namespace: 'undefined' });
    const loader = counted(() => undefined);
    expect(await cache.wrap('k', loader)).toBeUndefined();
    expect(await cache.wrap('k', loader)).toBeUndefined();
    expect(loader.runs).toBe(2);
    expect(await rows('undefined')).toEqual([]);
  });

  it('refuses values JSON cannot hold with InvalidValueError, caching nothing', async () => {
    const cache = newCache({ namespace: 'invalid' });
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const bad: Array<[string, () => unknown]> = [
      ['bigint', () => 10n],
      ['nested-bigint', () => ({ count: 10n })],
      ['circular', () => circular],
      ['symbol', () => ({ tag: Symbol('x') })],
      ['bare-symbol', () => Symbol('x')],
      // Keyv's serializer would drop it, and the entry would read back as missing, so every call loaded
      // and wrote again.
      ['function', () => () => 1],
    ];
    for (const [key, produce] of bad) {
      const calls = Array.from({ length: 5 }, () => cache.wrap(key, async () => produce()));
      for (const outcome of await Promise.allSettled(calls)) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(InvalidValueError);
      }
    }
    await expect(cache.wrap('function', async () => () => 1)).rejects.toThrow(/it is a function/);
    await expect(cache.wrap('bare-symbol', async () => Symbol('x'))).rejects.toThrow(/it is a symbol/);
    expect(await rows('invalid')).toEqual([]);
    // Nothing stuck: the same key takes a good value afterwards.
    expect(await cache.wrap('bigint', async () => 10)).toBe(10);
  });

  it('round-trips what Keyv escapes: strings starting with a colon, Buffers, nested objects', async () => {
    const writer = newCache({ namespace: 'escapes' });
    const reader = newCache({ namespace: 'escapes' });
    const value = {
      colon: ':starts',
      base64: ':base64:abc',
      buffer: Buffer.from('bytes'),
      list: [null, 1, 'x'],
    };
    await writer.wrap('k', async () => value);
    expect(await reader.wrap('k', async () => 'not this')).toEqual(value);
    expect(await writer.wrap('plain', async () => ':x')).toBe(':x');
    expect(await reader.wrap('plain', async () => 'not this')).toBe(':x');
  });
});

describe('the same data as Keyv', () => {
  it('what wrap() stores, Keyv on the same namespace reads, and the other way round', async () => {
    const cache = newCache();
    const keyv = new Keyv({ store: cache, namespace: 'shared' });
    await cache.wrap('from-wrap', async () => ({ a: 1 }), 60_000);
    expect(await keyv.get('from-wrap')).toEqual({ a: 1 });
    await keyv.set('from-keyv', { b: 2 });
    const loader = counted(() => 'not used');
    expect(await cache.wrap('from-keyv', loader)).toEqual({ b: 2 });
    expect(loader.runs).toBe(0);
    // And from another process's point of view: a store of its own.
    const elsewhere = new Keyv({ store: newCache(), namespace: 'shared' });
    expect(await elsewhere.get('from-wrap')).toEqual({ a: 1 });
    expect(await keyv.get(['from-wrap', 'from-keyv'])).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('with a Keyv that has no namespace, stores where that Keyv reads, and deleteWrapped() reaches it', async () => {
    for (const options of [{}, { namespace: 'own-calls' }]) {
      const cache = newCache(options);
      const keyv = new Keyv({ store: cache, namespace: '' });
      await cache.wrap('bare', async () => 'from wrap');
      expect(await keyv.get('bare')).toBe('from wrap');
      await keyv.set('bare-keyv', 'from keyv');
      expect(await cache.wrap('bare-keyv', async () => 'not used')).toBe('from keyv');
      expect(await cache.deleteWrapped(['bare'])).toBe(true);
      expect(await keyv.get('bare')).toBeUndefined();
    }
  });

  it("without a Keyv, uses options.namespace, or Keyv's default namespace", async () => {
    await newCache().wrap('k', async () => 'default');
    expect(await new Keyv({ store: newCache() }).get('k')).toBe('default');
    await newCache({ namespace: 'configured' }).wrap('k', async () => 'configured');
    expect(await new Keyv({ store: newCache(), namespace: 'configured' }).get('k')).toBe('configured');
  });

  it('sees a Keyv expiry as Keyv does: an entry past its expires is a miss', async () => {
    const cache = newCache();
    const keyv = new Keyv({ store: cache, namespace: 'keyv-expiry' });
    await keyv.set('k', 'old', 100);
    expect(await eventually(async () => (await cache.wrap('k', async () => 'new')) === 'new', 10_000)).toBe(
      true,
    );
  });
});

describe('bad input', () => {
  it('rejects with a typed error and does not run the loader', async () => {
    const cache = newCache({ namespace: 'bad' });
    const loader = counted(() => 'v');
    const cases: Array<[() => Promise<unknown>, new (...args: never[]) => Error]> = [
      [() => cache.wrap(42 as unknown as string, loader), InvalidKeyError],
      [() => cache.wrap('nul\u0000', loader), InvalidKeyError],
      [() => cache.wrap('lone\uD800', loader), InvalidKeyError],
      [() => cache.wrap('k', 'not a function' as unknown as () => string), InvalidOptionError],
      [() => cache.wrap('k', loader, Number.NaN), InvalidOptionError],
      [() => cache.wrap('k', loader, { refreshThreshold: -1 }), InvalidOptionError],
      [() => cache.wrap('k', loader, { refreshThreshold: Number.NaN }), InvalidOptionError],
      [() => cache.wrap('k', loader, { lockTimeout: -5 }), InvalidOptionError],
      [() => cache.wrap('k', loader, { onLockTimeout: 'wait' as 'load' }), InvalidOptionError],
      [() => cache.wrap('k', loader, { lockMode: 'row' as 'session' }), InvalidOptionError],
      [() => cache.wrap('k', loader, { signal: {} as AbortSignal }), InvalidOptionError],
      [() => cache.getOrSet('k', loader, { maxPollInterval: 0 }), InvalidOptionError],
    ];
    for (const [call, type] of cases) await expect(call()).rejects.toBeInstanceOf(type);
    expect(loader.runs).toBe(0);
  });

  it('a ttl function that returns nonsense rejects, and nothing is cached', async () => {
    const cache = newCache({ namespace: 'bad-ttl' });
    await expect(
      cache.wrap(
        'k',
        async () => 'v',
        () => '5' as unknown as number,
      ),
    ).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(
      cache.wrap(
        'k',
        async () => 'v',
        () => Number.NaN,
      ),
    ).rejects.toBeInstanceOf(InvalidOptionError);
    expect(await rows('bad-ttl')).toEqual([]);
  });
});

describe('a ttl already run out', () => {
  it('returns the loaded value and stores it expired: the next call loads again', async () => {
    const cache = newCache({ namespace: 'past-ttl' });
    const loader = counted(() => 'fresh');
    // A deadline already past, as `ttl = deadline - Date.now()` gives it; cache-manager's memory store agrees.
    expect(await cache.wrap('k', loader, () => -5)).toBe('fresh');
    expect(await cache.wrap('k', loader, -5)).toBe('fresh');
    expect(loader.runs).toBe(2);
    // Written (so an older value is gone everywhere), but no read returns it.
    expect(await rows('past-ttl')).toHaveLength(1);
    expect(await new Keyv({ store: cache, namespace: 'past-ttl' }).get('k')).toBeUndefined();
  });
});

describe('NullCache', () => {
  it('runs the loader on every call, with the same call shapes', async () => {
    const cache = new NullCache();
    const loader = counted(() => 'v');
    expect(await cache.wrap('k', loader)).toBe('v');
    expect(await cache.wrap('k', loader, 1000)).toBe('v');
    expect(await cache.getOrSet('k', loader, { ttl: 1000 })).toBe('v');
    const raw = await cache.wrap('k', loader, { ttl: 1000, raw: true });
    expect(raw.value).toBe('v');
    expect(raw.expires).toBeGreaterThan(Date.now());
    expect(loader.runs).toBe(4);
  });

  it('passes loader errors through, and honours an aborted signal', async () => {
    const cache = new NullCache();
    await expect(cache.wrap('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const controller = new AbortController();
    controller.abort(new Error('gave up'));
    await expect(cache.wrap('k', async () => 'v', { signal: controller.signal })).rejects.toThrow('gave up');
    await expect(cache.wrap('k', async () => 'v', Number.NaN)).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
