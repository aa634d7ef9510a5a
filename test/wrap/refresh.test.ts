import { describe, expect, it } from 'vitest';
import type { PostgresCache } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { eventually, sleep } from '../support/database.js';
import { counted, gate, holdSlot, lockHolders, lockOf, poolIsIdle } from './support.js';

const { schema, pool, newCache } = cacheFixture('wrap_refresh');

/** 60 s to live; the first version is due for refresh 1 s after its load, later versions not for a minute. */
const dueOnce = { ttl: 60_000, refreshThreshold: (version: number) => (version === 1 ? 59_000 : 0) };

type RefreshEvent = { key: string; value?: unknown; error?: unknown };

function refreshEvents(cache: PostgresCache): RefreshEvent[] {
  const events: RefreshEvent[] = [];
  cache.on('refresh', (event) => events.push(event));
  return events;
}

describe('refreshThreshold', () => {
  it('serves the cached value and refreshes it in the background once it is close to expiry', async () => {
    const cache = newCache({ namespace: 'refresh' });
    const events = refreshEvents(cache);
    let version = 0;
    const loader = counted(() => ++version);
    const options = dueOnce;
    expect(await cache.wrap('k', loader, options)).toBe(1);
    expect(await cache.wrap('k', loader, options)).toBe(1);
    expect(loader.runs).toBe(1);
    await sleep(1100);
    // Due: still answered from the cache, at once, while the refresh runs.
    expect(await cache.wrap('k', loader, options)).toBe(1);
    expect(await eventually(() => events.length === 1)).toBe(true);
    expect(events[0]).toEqual({ key: 'k', value: 2 });
    expect(await cache.wrap('k', loader, options)).toBe(2);
    expect(loader.runs).toBe(2);
    // The refreshed entry has a full ttl again, in PostgreSQL as in L1.
    const raw = await newCache({ namespace: 'refresh' }).wrap('k', loader, { raw: true });
    expect(raw.expires).toBeGreaterThan(Date.now() + 50_000);
  });

  it('takes the positional shape (key, loader, ttl, refreshThreshold) and a function of the value', async () => {
    const cache = newCache({ namespace: 'refresh-shapes' });
    const events = refreshEvents(cache);
    let loads = 0;
    const loaderOf = () => {
      let version = 0;
      return async () => {
        loads++;
        version++;
        return { version, due: version === 1 ? 59_000 : 0 };
      };
    };
    const positional = loaderOf();
    const byFunction = loaderOf();
    await cache.wrap('positional', positional, 60_000, 59_000);
    await cache.wrap('function', byFunction, { ttl: 60_000, refreshThreshold: (value) => value.due });
    await sleep(1100);
    await cache.wrap('positional', positional, 60_000, 59_000);
    await cache.wrap('function', byFunction, { ttl: 60_000, refreshThreshold: (value) => value.due });
    expect(await eventually(() => events.length === 2)).toBe(true);
    expect(events.map((event) => event.key).sort()).toEqual(['function', 'positional']);
    expect(loads).toBe(4);
  });

  it('does not refresh a value that is not yet due', async () => {
    const cache = newCache({ namespace: 'not-due' });
    const loader = counted(() => 'v');
    await cache.wrap('k', loader, { ttl: 60_000, refreshThreshold: 1_000 });
    await cache.wrap('k', loader, { ttl: 60_000, refreshThreshold: 1_000 });
    await sleep(100);
    await cache.wrap('k', loader, { ttl: 60_000, refreshThreshold: 1_000 });
    expect(loader.runs).toBe(1);
  });

  it('refreshes once across instances that each see the value due (one lock, one look under it)', async () => {
    const caches = [0, 1, 2].map(() => newCache({ namespace: 'refresh-once' }));
    await Promise.all(caches.map((cache) => cache.init()));
    const hold = gate();
    let version = 0;
    let loads = 0;
    const loader = async () => {
      loads++;
      if (version > 0) await hold.opened;
      return ++version;
    };
    const options = dueOnce;
    expect(await caches[0]?.wrap('k', loader, options)).toBe(1);
    await sleep(1100);
    // All three see it due while the first refresh is still loading.
    for (const cache of caches) expect(await cache.wrap('k', loader, options)).toBe(1);
    for (const cache of caches) expect(await cache.wrap('k', loader, options)).toBe(1);
    hold.open();
    const fresh = await eventually(async () => {
      const seen = await Promise.all(caches.map((cache) => cache.wrap('k', loader, options)));
      return seen.every((value) => value === 2);
    }, 10_000);
    expect(fresh).toBe(true);
    expect(loads).toBe(2);
  });

  it('a refresh that waited for a holder slot while another instance refreshed looks again under the lock, and loads nothing', async () => {
    // One holder slot (a pool of two): the refresh queues behind a fill that holds it.
    const queued = newCache({ namespace: 'refresh-queued', poolSize: 2 });
    const prompt = newCache({ namespace: 'refresh-queued' });
    await Promise.all([queued.init(), prompt.init()]);
    const events = refreshEvents(prompt);
    let version = 0;
    let loads = 0;
    const loader = async () => {
      loads++;
      return ++version;
    };
    expect(await queued.wrap('k', loader, dueOnce)).toBe(1);
    expect(await prompt.wrap('k', loader, dueOnce)).toBe(1);
    const blocker = await holdSlot(queued, 'blocker');
    await sleep(1100);
    // Due in both: the queued instance's refresh waits for the slot, the other one refreshes meanwhile.
    expect(await queued.wrap('k', loader, dueOnce)).toBe(1);
    expect(await prompt.wrap('k', loader, dueOnce)).toBe(1);
    expect(await eventually(() => events.length === 1)).toBe(true);
    expect(events[0]).toEqual({ key: 'k', value: 2 });
    blocker.release();
    expect(await blocker.done).toBe('blocker');
    // Under the lock, the queued refresh finds version 2, not due: it does not load version 3.
    expect(await eventually(() => poolIsIdle(queued.adapter.pool))).toBe(true);
    await sleep(200);
    expect(loads).toBe(2);
    expect(await queued.wrap('k', loader, dueOnce)).toBe(2);
  });
  it("while another session holds the key's lock, hits try it again once a poll interval has passed, not on every hit", async () => {
    const cache = newCache({ namespace: 'refresh-held', wrap: { maxPollInterval: 500 } });
    await cache.init();
    const loader = counted(() => 1);
    expect(await cache.wrap('k', loader, dueOnce)).toBe(1);
    await sleep(1100);
    // Another process is filling or refreshing the key: it holds the fill lock.
    const holder = await pool.connect();
    await holder.query('SELECT pg_advisory_lock($1, $2)', lockOf(schema, 'refresh-held', 'k'));
    let checkouts = 0;
    const counting = () => checkouts++;
    cache.adapter.pool.on('acquire', counting);
    try {
      const until = Date.now() + 700;
      while (Date.now() < until) {
        expect(await cache.wrap('k', loader, dueOnce)).toBe(1);
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      cache.adapter.pool.off('acquire', counting);
      await holder.query('SELECT pg_advisory_unlock($1, $2)', lockOf(schema, 'refresh-held', 'k'));
      holder.release();
    }
    // One attempt at once, one more after 500 ms: thousands of hits, two lock attempts.
    expect(checkouts).toBeGreaterThanOrEqual(1);
    expect(checkouts).toBeLessThanOrEqual(3);
    expect(loader.runs).toBe(1);
  });

  it('a refresh that fails keeps the old value, reports the error with it, and tries again on a later hit', async () => {
    const cache = newCache({ namespace: 'refresh-error' });
    const events = refreshEvents(cache);
    let fail = true;
    let version = 0;
    const loader = async () => {
      if (version > 0 && fail) throw new Error('refresh failed');
      return ++version;
    };
    const options = dueOnce;
    await cache.wrap('k', loader, options);
    await sleep(1100);
    expect(await cache.wrap('k', loader, options)).toBe(1);
    expect(await eventually(() => events.length === 1)).toBe(true);
    expect(events[0]?.error).toMatchObject({ message: 'refresh failed' });
    // As cache-manager reports a failed refresh: with the value still served.
    expect(events[0]?.value).toBe(1);
    expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
    fail = false;
    expect(await cache.wrap('k', loader, options)).toBe(1);
    expect(await eventually(() => events.length === 2)).toBe(true);
    expect(events[1]).toEqual({ key: 'k', value: 2 });
  });
});

describe('ttl as a function of the value', () => {
  it('stores a refresh whose loader outlasts what was left of the entry: expiring is not a change', async () => {
    const cache = newCache({ namespace: 'refresh-slow' });
    const events = refreshEvents(cache);
    let version = 0;
    const loader = counted(async () => {
      const next = ++version;
      if (next > 1) await sleep(700);
      return next;
    });
    const options = { ttl: 600, refreshThreshold: 500 };
    expect(await cache.wrap('k', loader, options)).toBe(1);
    await sleep(200);
    // Due, with about 400 ms left; the refresh takes 700.
    expect(await cache.wrap('k', loader, options)).toBe(1);
    expect(await eventually(() => events.length === 1, 3000)).toBe(true);
    expect(events[0]).toEqual({ key: 'k', value: 2 });
    expect(await cache.wrap('k', loader, options)).toBe(2);
    expect(loader.runs).toBe(2);
  });

  it('gives each value its own lifetime', async () => {
    const cache = newCache({ namespace: 'ttl-function' });
    const ttl = (value: { short: boolean }) => (value.short ? 150 : 60_000);
    let loads = 0;
    const loader = (short: boolean) => async () => {
      loads++;
      return { short };
    };
    await cache.wrap('short', loader(true), ttl);
    await cache.wrap('long', loader(false), ttl);
    expect(loads).toBe(2);
    expect(
      await eventually(async () => {
        await cache.wrap('short', loader(true), ttl);
        return loads > 3;
      }, 10_000),
    ).toBe(true);
    const before = loads;
    await cache.wrap('long', loader(false), ttl);
    expect(loads).toBe(before);
  });
});

describe('a refresh racing a write', () => {
  it('does not write its value over a delete or set that landed while its loader ran', async () => {
    const here = newCache({ namespace: 'refresh-race' });
    const elsewhere = newCache({ namespace: 'refresh-race' });
    let source = 'v1';
    const held = gate();
    let refreshing: () => void = () => undefined;
    const refreshStarted = new Promise<void>((resolve) => {
      refreshing = resolve;
    });
    let loads = 0;
    // The first load answers at once; the second (the refresh) is held after reading the source.
    const loader = async () => {
      const seen = source;
      if (loads++ > 0) {
        refreshing();
        await held.opened;
      }
      return seen;
    };
    expect(await here.wrap('k', loader, dueOnceAsString)).toBe('v1');
    await sleep(1100);
    // Due: answered from the cache while the refresh's loader (which saw v1) is held.
    expect(await here.wrap('k', loader, dueOnceAsString)).toBe('v1');
    await refreshStarted;
    source = 'v2';
    await elsewhere.deleteWrapped(['k']);
    held.open();
    // The refresh is over once its lock is free.
    const lock = lockOf(schema, 'refresh-race', 'k');
    expect(await eventually(async () => (await lockHolders(pool, lock)) === 0)).toBe(true);
    expect(await elsewhere.adapter.readEntry('refresh-race', 'refresh-race:k')).toBeUndefined();
    expect(await elsewhere.wrap('k', async () => source)).toBe('v2');
  });
});

/** As `dueOnce`, for string values: due 1 s after the first load. */
const dueOnceAsString = { ttl: 60_000, refreshThreshold: 59_000 };
