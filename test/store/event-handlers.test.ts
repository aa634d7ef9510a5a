import { describe, expect, it } from 'vitest';
import {
  InvalidKeyError,
  leaseListener,
  NullCache,
  PostgresCache,
  type PostgresCacheError,
} from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { databaseUrl, eventually, sleep } from '../support/database.js';

const { schema, pool, newCache: openCache } = cacheFixture('handlers', 2);

/** A URL of its own, so that this file's caches share a listener with nobody else's. */
function listenerUrl(label: string): string {
  const url = new URL(databaseUrl());
  url.searchParams.set('application_name', `handlers-${label}`);
  return url.toString();
}

function newCache(label: string) {
  return openCache({
    listenerConnectionString: listenerUrl(label),
    reconnect: { initialDelay: 50, maxDelay: 100 },
  });
}

describe('an application handler that throws', () => {
  it("on 'change' does not stop the eviction, and is reported as an error event", async () => {
    const writer = newCache('change');
    const reader = newCache('change');
    await Promise.all([writer.init(), reader.init()]);
    writer.namespace = 'change';
    reader.namespace = 'change';
    const errors: PostgresCacheError[] = [];
    reader.on('error', (error) => errors.push(error));
    reader.on('change', () => {
      throw new Error('a broken metrics hook');
    });
    await writer.set('k', 'v1');
    expect(await reader.get('k')).toBe('v1');
    await writer.set('k', 'v2');
    expect(await eventually(async () => (await reader.get('k')) === 'v2')).toBe(true);
    expect(errors.some((error) => error.message.includes('a broken metrics hook'))).toBe(true);
  });

  it("on 'disconnected' does not stop the reconnect", async () => {
    const cache = newCache('disconnected');
    await cache.init();
    cache.on('disconnected', () => {
      throw new Error('a broken alert hook');
    });
    const pid = cache.stats.listener.backendPid;
    await pool.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await eventually(() => !cache.coherent, 15_000, 1)).toBe(true);
    expect(await eventually(() => cache.coherent)).toBe(true);
    expect(cache.stats.listener.backendPid).not.toBe(pid);
  });

  it("on 'set' does not fail the write that was made", async () => {
    const cache = newCache('set');
    await cache.init();
    cache.namespace = 'set';
    cache.on('set', () => {
      throw new Error('a broken audit hook');
    });
    expect(await cache.set('k', 'stored')).toBe(true);
    expect(await cache.get('k')).toBe('stored');
  });

  it('with something that cannot be made a string (no prototype) is still reported as an error event', async () => {
    const cache = newCache('odd-throw');
    await cache.init();
    cache.namespace = 'odd-throw';
    const errors: PostgresCacheError[] = [];
    cache.on('error', (error) => errors.push(error));
    cache.on('set', () => {
      throw Object.create(null);
    });
    expect(await cache.set('k', 'stored')).toBe(true);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toContain('[object Object]');
  });
});

describe('disconnect()', () => {
  it('takes its handlers off the listener it shared with other caches', async () => {
    const staying = newCache('shared');
    await staying.init();
    const probe = leaseListener({ connection: listenerUrl('shared') });
    try {
      const before = probe.listener.listenerCount('connected');
      for (let i = 0; i < 5; i++) {
        const passing = newCache('shared');
        await passing.init();
        await passing.disconnect();
      }
      expect(probe.listener.listenerCount('connected')).toBe(before);
      expect(probe.listener.listenerCount('disconnected')).toBe(before);
    } finally {
      await probe.release();
    }
  });
});

describe('disconnect() while init() runs', () => {
  it('settles init() at once, as it settles what else was waiting', async () => {
    const cache = new PostgresCache({
      connectionString: databaseUrl(),
      listenerConnectionString: listenerUrl('early'),
      schema,
      sweepInterval: 0,
      connectionTimeout: 20_000,
    });
    const init = cache.init().then(
      () => 'resolved',
      () => 'rejected',
    );
    await sleep(5);
    await cache.disconnect();
    // Well before connectionTimeout, whose timer would otherwise be the only way out.
    expect(await Promise.race([init, sleep(3000).then(() => 'still pending')])).not.toBe('still pending');
  });
});

describe('a key that is not a string', () => {
  it('is refused with InvalidKeyError by every call, as a rejection', async () => {
    const cache = newCache('keys');
    await cache.init();
    for (const key of [undefined, null, 42]) {
      await expect(cache.get(key as unknown as string)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.set(key as unknown as string, 'v')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.has(key as unknown as string)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(cache.delete(key as unknown as string)).rejects.toBeInstanceOf(InvalidKeyError);
    }
  });

  it('among good keys, fails setMany() and getMany() and leaves none of their fills open', async () => {
    const cache = newCache('keys-among-good');
    await cache.init();
    // Internal state: a fill left open would stay for the life of the process.
    const openFills = () =>
      (cache as unknown as { coherentL1: { guard: { inFlight: Map<string, unknown> } } }).coherentL1.guard
        .inFlight.size;
    const entries = [
      { key: 'good', value: 'v' },
      { key: 42 as unknown as string, value: 'w' },
    ];
    await expect(cache.setMany(entries)).rejects.toBeInstanceOf(InvalidKeyError);
    expect(openFills()).toBe(0);
    await expect(cache.getMany(['good', 42 as unknown as string])).rejects.toBeInstanceOf(InvalidKeyError);
    expect(openFills()).toBe(0);
  });

  it('is refused by NullCache.wrap() as by PostgresCache.wrap()', async () => {
    const cache = new NullCache();
    await expect(cache.wrap(undefined as unknown as string, () => 1)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.wrap('k', 'not a loader' as unknown as () => number)).rejects.toThrow(/loader/);
  });
});
