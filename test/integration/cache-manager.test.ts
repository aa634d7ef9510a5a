import { type Cache, createCache } from 'cache-manager';
import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCache, type PostgresCacheOptions } from '../../src/index.js';
import { createPostgresCacheManager, type PostgresCacheManager } from '../../src/store/cache-manager.js';
import { databaseUrl, dropSchema, eventually, sleep, uniqueSchema } from '../support/database.js';
import { counted, gate } from '../wrap/support.js';

const schema = uniqueSchema('cache_manager');
const opened: Array<{ disconnect(): Promise<unknown> }> = [];
const base = () =>
  ({ connectionString: databaseUrl(), schema, sweepInterval: 0 }) satisfies PostgresCacheOptions;

function newCache(options: PostgresCacheOptions = {}) {
  const cache = new PostgresCache({ ...base(), ...options });
  opened.push(cache);
  return cache;
}

function newManager(options: Parameters<typeof createPostgresCacheManager>[0] = {}): PostgresCacheManager {
  const manager = createPostgresCacheManager({ ...base(), ...options });
  opened.push(manager);
  return manager;
}

beforeAll(() => PostgresCache.initDb({ connectionString: databaseUrl(), schema }));
afterAll(async () => {
  await Promise.all(opened.map((thing) => thing.disconnect()));
  await dropSchema(schema);
});

/** The same calls against two caches; expiries are compared as "about a minute from now". */
async function script(cache: Cache) {
  const events: unknown[] = [];
  for (const name of ['get', 'mget', 'set', 'mset', 'del', 'mdel', 'clear'] as const) {
    // 'mdel' is emitted though cache-manager's Events type leaves it out.
    (cache.on as (event: string, listener: (data: unknown) => void) => void)(name, (data: unknown) =>
      events.push([name, (data as { key?: string })?.key ?? null]),
    );
  }
  const soon = (expires: number | undefined) =>
    expires === undefined
      ? 'none'
      : Math.abs(expires - (Date.now() + 60_000)) < 10_000
        ? 'about 60 s'
        : expires;
  const out: unknown[] = [];
  out.push(await cache.set('a', { x: 1 }));
  out.push(await cache.get('a'), await cache.get('missing'));
  out.push(
    await cache.mset([
      { key: 'b', value: 2 },
      { key: 'c', value: null, ttl: 60_000 },
    ]),
  );
  out.push(await cache.mget(['a', 'b', 'c', 'missing']));
  out.push(soon(await cache.ttl('c')), soon(await cache.ttl('a')), await cache.ttl('missing'));
  out.push(await cache.del('a'), await cache.get('a'));
  out.push(await cache.mdel(['b', 'c']), await cache.mget(['b', 'c']));
  const loader = counted(() => ({ loaded: true }));
  out.push(await cache.wrap('w', loader, 60_000), await cache.wrap('w', loader), loader.runs);
  out.push(soon(await cache.ttl('w')));
  out.push(
    await cache.wrap('raw', async () => 'r', { ttl: 60_000, raw: true }).then((raw) => soon(raw?.expires)),
  );
  out.push(
    await cache.set('z', 'before clear'),
    await cache.clear(),
    await cache.get('z'),
    await cache.get('w'),
  );
  return { out, events };
}

describe('cache-manager 7 over new Keyv({ store: PostgresCache })', () => {
  it.each([false, true])(
    'answers every call, and emits every event, exactly as over its in-memory store (decodeL1Hits %s)',
    async (decodeL1Hits) => {
      const expected = await script(createCache({ stores: [new Keyv()] }));
      const cache = newCache({ decodeL1Hits });
      // L1 is used once the cache has checked that change events reach it: init() waits for that.
      await cache.init();
      const actual = await script(createCache({ stores: [new Keyv({ store: cache, namespace: 'parity' })] }));
      expect(actual).toEqual(expected);
      expect(cache.stats.l1.hits).toBeGreaterThan(0);
    },
  );

  it('sees what another process stored, through PostgreSQL', async () => {
    const writer = createCache({ stores: [new Keyv({ store: newCache(), namespace: 'shared' })] });
    const reader = createCache({ stores: [new Keyv({ store: newCache(), namespace: 'shared' })] });
    await writer.set('k', { from: 'writer' }, 60_000);
    expect(await reader.get('k')).toEqual({ from: 'writer' });
    await writer.del('k');
    expect(await eventually(async () => (await reader.get('k')) === undefined)).toBe(true);
  });

  it('its own wrap() protects one process only: two instances each run the loader (why the factory exists)', async () => {
    const managers = [0, 1].map(() =>
      createCache({ stores: [new Keyv({ store: newCache(), namespace: 'plain' })] }),
    );
    const hold = gate();
    const loader = counted(async () => {
      await hold.opened;
      return 'v';
    });
    const calls = managers.map((manager) => manager.wrap('k', loader));
    await eventually(() => loader.runs === 2);
    hold.open();
    expect(await Promise.all(calls)).toEqual(['v', 'v']);
    expect(loader.runs).toBe(2);
  });
});

describe('createPostgresCacheManager()', () => {
  it('is a cache-manager Cache whose wrap() runs the loader once across instances', async () => {
    const managers = [0, 1, 2].map(() => newManager({ namespace: 'cluster' }));
    const hold = gate();
    const loader = counted(async () => {
      await hold.opened;
      return { once: true };
    });
    const calls = managers.flatMap((manager) => Array.from({ length: 10 }, () => manager.wrap('k', loader)));
    await eventually(() => loader.runs === 1);
    await sleep(100);
    hold.open();
    expect(await Promise.all(calls)).toEqual(Array(30).fill({ once: true }));
    expect(loader.runs).toBe(1);
    // What wrap() stored is an ordinary cache-manager entry.
    for (const manager of managers) expect(await manager.get('k')).toEqual({ once: true });
  });

  it("takes cache-manager's wrap() call shapes and its default ttl", async () => {
    const manager = newManager({ namespace: 'factory-shapes', ttl: 60_000 });
    const about = (expires: number | undefined, ms: number) =>
      expires !== undefined && Math.abs(expires - (Date.now() + ms)) < 10_000;
    await manager.wrap('default', async () => 1);
    expect(about(await manager.ttl('default'), 60_000)).toBe(true);
    await manager.wrap('positional', async () => 2, 120_000, 1_000);
    expect(about(await manager.ttl('positional'), 120_000)).toBe(true);
    await manager.wrap('options', async () => 3, { ttl: (value: number) => value * 60_000 });
    expect(about(await manager.ttl('options'), 180_000)).toBe(true);
    const raw = await manager.wrap('raw', async () => 4, { raw: true });
    expect(raw.value).toBe(4);
    expect(about(raw.expires, 60_000)).toBe(true);
    await manager.set('set', 5);
    expect(about(await manager.ttl('set'), 60_000)).toBe(true);
    // As cache-manager does: a function of the value that returns undefined falls back to the default.
    const noOpinion = (() => undefined) as unknown as (value: number) => number;
    await manager.wrap('no-opinion', async () => 6, noOpinion);
    expect(about(await manager.ttl('no-opinion'), 60_000)).toBe(true);
  });

  it("reports a background refresh as cache-manager's 'refresh' event", async () => {
    const manager = newManager({ namespace: 'factory-refresh' });
    const refreshed: unknown[] = [];
    const listener = (event: unknown) => refreshed.push(event);
    manager.on('refresh', listener);
    let version = 0;
    const options = { ttl: 60_000, refreshThreshold: (value: number) => (value === 1 ? 59_800 : 0) };
    await manager.wrap('k', async () => ++version, options);
    await sleep(250);
    expect(await manager.wrap('k', async () => ++version, options)).toBe(1);
    expect(await eventually(() => refreshed.length === 1)).toBe(true);
    expect(refreshed[0]).toEqual({ key: 'k', value: 2 });
    manager.off('refresh', listener);
  });

  it('refreshes in the background with its default refreshThreshold, or one given after the ttl', async () => {
    const refreshed: unknown[] = [];
    const listener = (event: unknown) => refreshed.push(event);
    const withDefault = newManager({ namespace: 'factory-refresh-default', refreshThreshold: 59_800 });
    const plain = newManager({ namespace: 'factory-refresh-positional' });
    for (const manager of [withDefault, plain]) manager.on('refresh', listener);
    let version = 0;
    await withDefault.wrap('default', async () => ++version, 60_000);
    await plain.wrap('positional', async () => ++version, 60_000, 59_800);
    await sleep(250);
    // Less than refreshThreshold is left of both: each hit answers the old value and starts a refresh.
    expect(await withDefault.wrap('default', async () => ++version, 60_000)).toBe(1);
    expect(await plain.wrap('positional', async () => ++version, 60_000, 59_800)).toBe(2);
    expect(await eventually(() => refreshed.length === 2)).toBe(true);
    expect(refreshed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'default' }),
        expect.objectContaining({ key: 'positional' }),
      ]),
    );
    for (const manager of [withDefault, plain]) manager.off('refresh', listener);
  });

  it("off() removes a listener of the events it emits itself ('refresh', 'mdel')", async () => {
    const manager = newManager({ namespace: 'factory-off' });
    const on = manager.on as (event: string, listener: (data: unknown) => void) => void;
    const off = manager.off as (event: string, listener: (data: unknown) => void) => void;
    const heard: string[] = [];
    const mdelListener = () => heard.push('mdel');
    const refreshListener = () => heard.push('refresh');
    on('mdel', mdelListener);
    on('refresh', refreshListener);
    await manager.mdel(['a']);
    expect(heard).toEqual(['mdel']);
    off('mdel', mdelListener);
    off('refresh', refreshListener);
    await manager.mdel(['a']);
    const options = { ttl: 60_000, refreshThreshold: 59_800 };
    await manager.wrap('k', async () => 1, options);
    await sleep(250);
    await manager.wrap('k', async () => 2, options);
    // The refresh has run (its value is stored), and no listener heard it.
    expect(await eventually(async () => (await manager.get('k')) === 2)).toBe(true);
    expect(heard).toEqual(['mdel']);
  });

  it('keeps the options it is given: cacheId, decodeL1Hits false, a default ttl of 0 (no expiry)', async () => {
    const manager = newManager({
      namespace: 'factory-given',
      cacheId: 'reports',
      decodeL1Hits: false,
      ttl: 0,
    });
    expect(manager.cacheId()).toBe('reports');
    expect(manager.postgres.options.decodeL1Hits).toBe(false);
    await manager.set('set', 1);
    await manager.wrap('wrapped', async () => 2);
    expect(await manager.mget(['set', 'wrapped'])).toEqual([1, 2]);
    expect(await manager.ttl('set')).toBeUndefined();
    expect(await manager.ttl('wrapped')).toBeUndefined();
  });

  it('answers as cache-manager over its in-memory store, with L1 hits handed to Keyv decoded', async () => {
    const manager = newManager({ namespace: 'factory-parity' });
    expect(manager.postgres.options.decodeL1Hits).toBe(true);
    // L1 is used once the cache has checked that change events reach it: init() waits for that.
    await manager.postgres.init();
    // The one documented difference: what the factory's wrap() loads emits no 'set' event.
    const withoutWrapSets = ({ out, events }: Awaited<ReturnType<typeof script>>) => ({
      out,
      events: events.filter((event) => !['["set","w"]', '["set","raw"]'].includes(JSON.stringify(event))),
    });
    const expected = withoutWrapSets(await script(createCache({ stores: [new Keyv()] })));
    expect(await script(manager as unknown as Cache)).toEqual(expected);
    expect(manager.postgres.stats.l1.hits).toBeGreaterThan(0);
  });

  it('rejects a write it refuses or cannot make, as cache-manager does over its own stores; a failed read is a miss', async () => {
    const manager = newManager({ namespace: 'factory-errors' });
    await manager.set('kept', 1);
    const setEvents: unknown[] = [];
    manager.on('set', (event) => setEvents.push(event));
    await expect(manager.set('nul\u0000', 2)).rejects.toMatchObject({ code: 'ERR_PGCACHE_INVALID_KEY' });
    await expect(manager.set('kept', 3, Number.NaN)).rejects.toMatchObject({
      code: 'ERR_PGCACHE_INVALID_OPTION',
    });
    await expect(
      manager.mset([
        { key: 'c', value: 4 },
        { key: 'x\u0000', value: 5 },
      ]),
    ).rejects.toMatchObject({ code: 'ERR_PGCACHE_INVALID_KEY' });
    expect(setEvents.every((event) => (event as { error?: unknown }).error !== undefined)).toBe(true);
    expect(await manager.get('kept')).toBe(1);
    expect(await manager.get('c')).toBeUndefined();
    const closed = createPostgresCacheManager({ ...base(), namespace: 'factory-errors' });
    await closed.disconnect();
    await expect(closed.set('after', 1)).rejects.toMatchObject({ code: 'ERR_PGCACHE_DISCONNECTED' });
    expect(await closed.get('kept')).toBeUndefined();
  });

  it('refuses a value JSON cannot hold with an InvalidValueError, and keeps what was stored', async () => {
    const manager = newManager({ namespace: 'factory-values' });
    await manager.set('kept', 'before');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [10n, cycle, () => 1, { nested: 1n }]) {
      await expect(manager.set('kept', value)).rejects.toMatchObject({ code: 'ERR_PGCACHE_INVALID_VALUE' });
    }
    await expect(
      manager.mset([
        { key: 'other', value: 1 as unknown },
        { key: 'kept', value: 2n as unknown },
      ]),
    ).rejects.toMatchObject({ code: 'ERR_PGCACHE_INVALID_VALUE' });
    expect(await manager.get('kept')).toBe('before');
    expect(await manager.get('other')).toBeUndefined();
  });

  it('deletes the keys of one mdel() in one statement: thousands of them, within a short connectionTimeout', async () => {
    const manager = newManager({ namespace: 'factory-mdel', poolSize: 1, connectionTimeout: 1000 });
    await manager.postgres.init();
    // One at a time, deleting these takes seconds on one connection: most would wait past connectionTimeout.
    const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}`);
    await manager.mset(keys.map((key) => ({ key, value: 1 })));
    const events: unknown[] = [];
    (manager.on as (event: string, listener: (data: unknown) => void) => void)('mdel', (event) =>
      events.push(event),
    );
    expect(await manager.mdel(keys)).toBe(true);
    expect(events).toEqual([{ keys }]);
    expect((await manager.mget(keys)).every((value) => value === undefined)).toBe(true);
    // A key given with its namespace already, as Keyv's delete() takes it (cache-manager's mdel calls that).
    await manager.set('factory-mdel:given', 1);
    expect(await manager.mdel(['factory-mdel:given'])).toBe(true);
    expect(await manager.get('factory-mdel:given')).toBeUndefined();
    events.length = 0;
    await manager.disconnect();
    await expect(manager.mdel(['k1'])).rejects.toMatchObject({ code: 'ERR_PGCACHE_DISCONNECTED' });
    expect(events).toEqual([{ keys: ['k1'], error: expect.anything() }]);
  });

  it('takes Infinity as its default ttl: no expiry, as per call', async () => {
    const manager = newManager({ namespace: 'factory-infinity', ttl: Number.POSITIVE_INFINITY });
    await manager.set('k', 1);
    expect(await manager.get('k')).toBe(1);
    expect(await manager.ttl('k')).toBeUndefined();
  });

  it('refuses a default ttl or refreshThreshold that is not a number of ms', () => {
    for (const options of [{ ttl: Number.NaN }, { ttl: '60s' }, { refreshThreshold: -1 }]) {
      expect(() => createPostgresCacheManager({ ...base(), ...(options as object) })).toThrow(
        expect.objectContaining({ code: 'ERR_PGCACHE_INVALID_OPTION' }),
      );
    }
  });

  it('disconnect() closes the PostgresCache and its pool', async () => {
    const manager = createPostgresCacheManager({ ...base(), namespace: 'factory-close' });
    await manager.wrap('k', async () => 'v');
    await manager.disconnect();
    await expect(manager.postgres.wrap('k', async () => 'v')).rejects.toMatchObject({
      code: 'ERR_PGCACHE_DISCONNECTED',
    });
    expect((manager.postgres.adapter.pool as unknown as { ended: boolean }).ended).toBe(true);
  });
});
