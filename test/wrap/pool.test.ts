import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { PostgresCache } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { databaseUrl, eventually, sleep } from '../support/database.js';
import { gate, holdSlot, lockOf, poolIsIdle } from './support.js';

const { schema, pool, newCache: openCache } = cacheFixture('wrap_pool');

const KEYS = 1000;
const POOL_SIZE = 10;

/**
 * A fill still queued for a holder permit at `lockTimeout` runs its loader without one (onLockTimeout 'load'),
 * which a loaded machine reaches with a thousand keys: these tests are about the permits, so the timeout is
 * put beyond what a run takes (30 s; runs past 10 s were seen under load).
 */
function newCache(namespace: string, lockMode: 'session' | 'transaction') {
  return openCache({ namespace, poolSize: POOL_SIZE, wrap: { lockMode, lockTimeout: 30_000 } });
}

/** How many of these keys' fill locks some session holds now. */
async function heldFillLocks(namespace: string, keys: string[]): Promise<number> {
  const locks = keys.map((key) => lockOf(schema, namespace, key));
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks
     WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objsubid = 2
       AND objid = ANY (SELECT (unnest($2::bigint[]) & 4294967295)::oid)`,
    [locks[0]?.[0] ?? 0, locks.map((lock) => lock[1])],
  );
  return rows[0]?.n ?? 0;
}

describe.each(['session', 'transaction'] as const)(
  'a thousand cold keys at once, pool of ten (%s locks)',
  (lockMode) => {
    it('answers every caller, runs each loader once, and leaves the pool idle', {
      timeout: 120_000,
    }, async () => {
      const cache = newCache(`many-${lockMode}`, lockMode);
      const loads = new Map<string, number>();
      let running = 0;
      let mostAtOnce = 0;
      const loaderFor = (key: string) => async () => {
        loads.set(key, (loads.get(key) ?? 0) + 1);
        mostAtOnce = Math.max(mostAtOnce, ++running);
        await sleep(key.length % 5);
        running--;
        return { key };
      };
      const keys = Array.from({ length: KEYS }, (_, index) => `key-${index}`);
      // The check below sees a held lock: prove it on one taken by hand.
      const probe = await pool.connect();
      await probe.query('SELECT pg_advisory_lock($1, $2)', lockOf(schema, `many-${lockMode}`, 'key-7'));
      expect(await heldFillLocks(`many-${lockMode}`, keys)).toBe(1);
      await probe.query('SELECT pg_advisory_unlock($1, $2)', lockOf(schema, `many-${lockMode}`, 'key-7'));
      probe.release();
      // Two callers per key: the second shares the first one's fill.
      const calls = keys.flatMap((key) => [cache.wrap(key, loaderFor(key)), cache.wrap(key, loaderFor(key))]);
      const outcomes = await Promise.allSettled(calls);
      const failures = outcomes.filter((outcome) => outcome.status === 'rejected');
      expect(failures.map((failure) => String((failure as PromiseRejectedResult).reason))).toEqual([]);
      expect(
        outcomes.map((outcome) => (outcome as PromiseFulfilledResult<{ key: string }>).value.key),
      ).toEqual(keys.flatMap((key) => [key, key]));
      expect(loads.size).toBe(KEYS);
      expect([...loads.values()].every((count) => count === 1)).toBe(true);
      // Holders run loaders side by side, fewer than the pool holds.
      expect(mostAtOnce).toBeGreaterThan(1);
      expect(mostAtOnce).toBeLessThan(POOL_SIZE);
      const db = cache.adapter.pool;
      expect(await eventually(() => poolIsIdle(db))).toBe(true);
      expect(db.totalCount).toBeLessThanOrEqual(POOL_SIZE);
      expect(await heldFillLocks(`many-${lockMode}`, keys)).toBe(0);
      // Every value is in PostgreSQL.
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}".pgcache_entries WHERE namespace = $1`,
        [`many-${lockMode}`],
      );
      expect(rows[0]?.n).toBe(KEYS);
    });

    it('a loader that calls wrap() for another key does not deadlock the holders', async () => {
      const cache = newCache(`nested-${lockMode}`, lockMode);
      const outer = Array.from({ length: 50 }, (_, index) =>
        cache.wrap(`outer-${index}`, async () => {
          const inner = await cache.wrap(`inner-${index % 10}`, async () => {
            await sleep(5);
            return index % 10;
          });
          return { index, inner };
        }),
      );
      const values = await Promise.all(outer);
      expect(values.map((value) => value.inner)).toEqual(values.map((value) => value.index % 10));
      expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
    });
  },
);

describe('holder permits (one, in a pool of two)', () => {
  it('a loader that calls wrap() for a key an outside caller is queued for does not deadlock', async () => {
    const cache = openCache({ namespace: 'nested-outside', poolSize: 2 });
    const outer = cache.wrap('a', async () => {
      await sleep(150); // meanwhile an outside caller asks for b, and queues behind this loader's permit
      return { b: await cache.wrap('b', async () => 'b by a') };
    });
    await sleep(30);
    const outside = cache.wrap('b', async () => 'b directly');
    const settled = await Promise.race([
      Promise.all([outer, outside]),
      sleep(5000).then(() => 'still pending'),
    ]);
    expect(settled).not.toBe('still pending');
    expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
  });

  it("a caller queued for a permit takes another process's write when it lands", async () => {
    const here = openCache({ namespace: 'queued', poolSize: 2 });
    const elsewhere = openCache({ namespace: 'queued' });
    await Promise.all([here.init(), elsewhere.init()]);
    // Holds this cache's only permit for as long as the test wants.
    const slow = await holdSlot(here, 'slow');
    const written = gate();
    const filling = elsewhere.wrap('y', async () => {
      await written.opened;
      return 'y from elsewhere';
    });
    const waiting = here.wrap('y', async () => 'y from here', { lockTimeout: 5000, onLockTimeout: 'throw' });
    await sleep(50);
    written.open();
    await filling;
    const outcome = await Promise.race([waiting, sleep(3000).then(() => 'still queued')]);
    slow.release();
    await slow.done;
    expect(outcome).toBe('y from elsewhere');
  });

  it('a caller queued for a permit looks again under the lock: a value written meanwhile is not loaded again', async () => {
    // Without notifications nothing tells the queued caller about the write: only its look under the lock finds it.
    const here = openCache({ namespace: 'queued-look', poolSize: 2, notifications: false });
    const elsewhere = openCache({ namespace: 'queued-look' });
    await Promise.all([here.init(), elsewhere.init()]);
    const slow = await holdSlot(here, 'slow');
    let loads = 0;
    const waiting = here.wrap(
      'y',
      async () => {
        loads++;
        return 'y from here';
      },
      { lockTimeout: 30_000 },
    );
    // It has looked (a miss) and queued for the permit the slow loader holds.
    await sleep(100);
    expect(await elsewhere.wrap('y', async () => 'y from elsewhere')).toBe('y from elsewhere');
    slow.release();
    await slow.done;
    expect(await waiting).toBe('y from elsewhere');
    expect(loads).toBe(0);
    expect(await elsewhere.wrap('y', async () => 'loaded again')).toBe('y from elsewhere');
  });
});

describe('caches that share one pool', () => {
  it('share its holder slots: pool size - 1 fills at once across them, and reads still go', async () => {
    const shared = new pg.Pool({ connectionString: databaseUrl(), max: 3, connectionTimeoutMillis: 2000 });
    shared.on('error', () => undefined);
    const users = openCache({ namespace: 'shared-users', pool: shared });
    const orders = openCache({ namespace: 'shared-orders', pool: shared });
    const release = gate();
    try {
      await users.set('plain', 'value');
      let running = 0;
      let mostAtOnce = 0;
      const loader = (name: string) => async () => {
        mostAtOnce = Math.max(mostAtOnce, ++running);
        await release.opened;
        running--;
        return name;
      };
      const fills = [users, orders].flatMap((cache, which) =>
        [0, 1].map((index) =>
          cache.wrap(`fill-${index}`, loader(`${which}:${index}`), { lockTimeout: 30_000 }),
        ),
      );
      expect(await eventually(() => running === 2)).toBe(true);
      await sleep(100);
      expect(running).toBe(2);
      expect((await users.adapter.readEntry('shared-users', 'plain'))?.value).toBe('value');
      release.open();
      expect(await Promise.all(fills)).toEqual(['0:0', '0:1', '1:0', '1:1']);
      expect(mostAtOnce).toBe(2);
    } finally {
      release.open();
      await Promise.all([users.disconnect(), orders.disconnect()]);
      await shared.end();
    }
  });
});

describe('lock timeouts', () => {
  it("say when the fill waited for this process's slots, not for another process", async () => {
    const cache = openCache({ namespace: 'slots-busy', poolSize: 2 });
    const release = gate();
    const holding = cache.wrap('a', async () => {
      await release.opened;
      return 'a';
    });
    await sleep(50);
    const refused = cache.wrap('b', async () => 'b', { lockTimeout: 300, onLockTimeout: 'throw' });
    await expect(refused).rejects.toThrow(
      /every fill slot of its pool .* has been busy for more than 300 ms/,
    );
    release.open();
    expect(await holding).toBe('a');
  });
});

/**
 * A loader of `here` leaves a timer behind that calls wrap(`key`, `load`) once the loader has returned; when it
 * fires, this pool's only holder slot is held by a fill waiting for `slot`. Resolves once the timer has fired.
 */
async function timerLeftBehind(
  here: PostgresCache,
  key: string,
  slot: ReturnType<typeof gate>,
  load: () => Promise<string>,
): Promise<{ later: Promise<string>; holdingTheSlot: Promise<string> }> {
  let later: Promise<string> | undefined;
  const fired = gate();
  const busy = gate();
  await here.wrap('a', async () => {
    setTimeout(() => {
      later = here.wrap(key, load);
      fired.open();
    }, 100);
    return 'a';
  });
  const holdingTheSlot = here.wrap('busy', async () => {
    busy.open();
    await slot.opened;
    return 'busy';
  });
  await busy.opened;
  await fired.opened;
  return { later: later as Promise<string>, holdingTheSlot };
}

describe('a fill inside a loader, with the key held by another fill', () => {
  it('waits for that fill and takes its value: one load per key, in this process or across', async () => {
    const here = openCache({ namespace: 'nested-held', poolSize: 3 });
    const elsewhere = openCache({ namespace: 'nested-held' });
    await Promise.all([here.init(), elsewhere.init()]);
    const loads: string[] = [];
    const slow = gate();
    // Another process holds y's lock and loads it slowly; this process holds k's lock the same way.
    const yElsewhere = elsewhere.wrap('y', async () => {
      loads.push('y elsewhere');
      await slow.opened;
      return 'y from elsewhere';
    });
    const kHere = here.wrap('k', async () => {
      loads.push('k here');
      await slow.opened;
      return 'k from here';
    });
    await sleep(100);
    const outer = here.wrap('outer', async () => {
      const y = await here.wrap('y', async () => 'y nested', { lockTimeout: 10_000, onLockTimeout: 'throw' });
      const k = await here.wrap('k', async () => 'k nested', { lockTimeout: 10_000, onLockTimeout: 'throw' });
      return `${y} / ${k}`;
    });
    await sleep(200);
    slow.open();
    expect(await outer).toBe('y from elsewhere / k from here');
    expect(await Promise.all([yElsewhere, kHere])).toEqual(['y from elsewhere', 'k from here']);
    expect(loads.sort()).toEqual(['k here', 'y elsewhere']);
    expect(await eventually(() => poolIsIdle(here.adapter.pool))).toBe(true);
  });

  it('a wrap() from a timer a loader left behind is an ordinary fill: it waits for the holder', async () => {
    const here = openCache({ namespace: 'left-behind', poolSize: 2 });
    const elsewhere = openCache({ namespace: 'left-behind' });
    await Promise.all([here.init(), elsewhere.init()]);
    const slow = gate();
    let yLoads = 0;
    const yElsewhere = elsewhere.wrap('y', async () => {
      yLoads++;
      await slow.opened;
      return 'y from elsewhere';
    });
    const { later, holdingTheSlot } = await timerLeftBehind(here, 'y', slow, async () => {
      yLoads++;
      return 'y from the timer';
    });
    await sleep(100);
    slow.open();
    expect(await holdingTheSlot).toBe('busy');
    expect(await later).toBe('y from elsewhere');
    expect(await yElsewhere).toBe('y from elsewhere');
    expect(yLoads).toBe(1);
  });

  it('a wrap() from a timer a loader left behind queues for a holder slot: the connection for reads stays free', async () => {
    const here = openCache({ namespace: 'left-behind-cold', poolSize: 2 });
    await here.init();
    await here.set('left-behind-cold:plain', 'value');
    const slow = gate();
    const timerLoad = gate();
    let timerLoads = 0;
    const { later, holdingTheSlot } = await timerLeftBehind(here, 'cold', slow, async () => {
      timerLoads++;
      await timerLoad.opened;
      return 'cold from the timer';
    });
    await sleep(200);
    // The timer's fill waits for the slot, like any call: its loader has not started, and reads still go.
    expect(timerLoads).toBe(0);
    const read = await Promise.race([
      here.get('left-behind-cold:plain'),
      sleep(2000).then(() => 'no connection'),
    ]);
    expect(read).toBe('value');
    slow.open();
    expect(await holdingTheSlot).toBe('busy');
    expect(await eventually(() => timerLoads === 1)).toBe(true);
    timerLoad.open();
    expect(await later).toBe('cold from the timer');
  });
});

describe('a pool whose size changes', () => {
  it('keeps a connection for reads: the slots follow its max', async () => {
    const shared = new pg.Pool({ connectionString: databaseUrl(), max: 10, connectionTimeoutMillis: 2000 });
    shared.on('error', () => undefined);
    const cache = openCache({ namespace: 'resized', pool: shared, l1: false });
    try {
      await cache.set('plain', 'value');
      expect(await cache.wrap('first', async () => 'first')).toBe('first');
      shared.options.max = 3;
      // Each loader reads while the others hold their locks: a read needs the connection left over.
      const fills = [0, 1, 2].map((index) =>
        cache.wrap(`fill-${index}`, async () => {
          await sleep(200);
          return `${index}:${(await cache.adapter.readEntry('resized', 'plain'))?.value}`;
        }),
      );
      expect(await Promise.all(fills)).toEqual(['0:value', '1:value', '2:value']);
    } finally {
      await cache.disconnect();
      await shared.end();
    }
  });
});

describe('a fill a loader starts and does not wait for', () => {
  it("does not hold up the loader's callers; the connection goes back once it ends", async () => {
    const cache = openCache({ namespace: 'unawaited', poolSize: 3 });
    const slow = gate();
    const started = gate();
    let inner: Promise<string> | undefined;
    const outer = await Promise.race([
      cache.wrap('outer', async () => {
        inner = cache.wrap('warmed', async () => {
          started.open();
          await slow.opened;
          return 'warmed';
        });
        // Returns once the inner fill runs on this holder's connection, without waiting for it to end.
        await started.opened;
        return 'outer';
      }),
      sleep(3000).then(() => 'held up'),
    ]);
    expect(outer).toBe('outer');
    expect(poolIsIdle(cache.adapter.pool)).toBe(false);
    slow.open();
    expect(await inner).toBe('warmed');
    expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
    expect(await cache.wrap('warmed', async () => 'again')).toBe('warmed');
  });
});
