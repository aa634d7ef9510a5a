import Keyv from 'keyv';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { LockTimeoutError } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { databaseUrl, eventually, sleep } from '../support/database.js';
import { counted, gate, lockHolders, lockOf, poolIsIdle } from './support.js';

const { schema, pool, newCache } = cacheFixture('wrap_failures');

async function storedCount(namespace: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM "${schema}".pgcache_entries WHERE namespace = $1`,
    [namespace],
  );
  return rows[0]?.n ?? 0;
}

/** Holds a key's fill lock from a session of its own, as another process's holder would. */
async function holdLock(namespace: string, key: string) {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  await client.query('SELECT pg_advisory_lock($1, $2)', lockOf(schema, namespace, key));
  return { release: () => client.end() };
}

describe.each(['session', 'transaction'] as const)('a loader that throws (%s locks)', (lockMode) => {
  it('reaches every caller, caches nothing, and leaves no lock, promise or connection behind', async () => {
    const namespace = `throws-${lockMode}`;
    const cache = newCache({ namespace, wrap: { lockMode } });
    const hold = gate();
    const failing = counted(async () => {
      await hold.opened;
      throw new Error('backend down');
    });
    const calls = Array.from({ length: 20 }, () => cache.wrap('k', failing));
    expect(
      await eventually(async () => (await lockHolders(pool, lockOf(schema, namespace, 'k'))) === 1),
    ).toBe(true);
    hold.open();
    const outcomes = await Promise.allSettled(calls);
    expect(outcomes.every((outcome) => outcome.status === 'rejected')).toBe(true);
    expect(new Set(outcomes.map((outcome) => (outcome as PromiseRejectedResult).reason.message))).toEqual(
      new Set(['backend down']),
    );
    expect(failing.runs).toBe(1);
    expect(await storedCount(namespace)).toBe(0);
    expect(await lockHolders(pool, lockOf(schema, namespace, 'k'))).toBe(0);
    expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
    // The next call runs the loader again, and succeeds.
    const working = counted(() => 'back');
    expect(await cache.wrap('k', working)).toBe('back');
    expect(working.runs).toBe(1);
  });

  it('a loader that throws synchronously is a rejection like any other', async () => {
    const cache = newCache({ namespace: `sync-throw-${lockMode}`, wrap: { lockMode } });
    const loader = () => {
      throw new Error('sync');
    };
    await expect(cache.wrap('k', loader)).rejects.toThrow('sync');
    expect(await cache.wrap('k', async () => 'ok')).toBe('ok');
  });
});

describe('a caller that gives up', () => {
  it('stops waiting alone: the first caller aborting leaves the others and later callers served', async () => {
    const namespace = 'abort-first';
    const cache = newCache({ namespace });
    const hold = gate();
    const loader = counted(async () => {
      await hold.opened;
      return 'loaded';
    });
    const controller = new AbortController();
    const first = cache.wrap('k', loader, { signal: controller.signal });
    const second = cache.wrap('k', loader);
    await eventually(() => loader.runs === 1);
    controller.abort(new Error('client went away'));
    await expect(first).rejects.toThrow('client went away');
    const third = cache.wrap('k', loader);
    hold.open();
    expect(await second).toBe('loaded');
    expect(await third).toBe('loaded');
    expect(await cache.wrap('k', loader)).toBe('loaded');
    expect(loader.runs).toBe(1);
  });

  it('every caller aborting lets the fill finish (or fail) without an unhandled rejection', async () => {
    const cache = newCache({ namespace: 'abort-all' });
    const hold = gate();
    const controller = new AbortController();
    const failing = cache.wrap(
      'fails',
      async () => {
        await hold.opened;
        throw new Error('nobody is listening');
      },
      { signal: controller.signal },
    );
    const succeeding = cache.wrap(
      'succeeds',
      async () => {
        await hold.opened;
        return 'kept';
      },
      { signal: controller.signal },
    );
    controller.abort();
    await expect(failing).rejects.toThrow(/abort/i);
    await expect(succeeding).rejects.toThrow(/abort/i);
    hold.open();
    // The value loaded for nobody is cached all the same.
    expect(await eventually(async () => (await storedCount('abort-all')) === 1)).toBe(true);
    expect(await cache.wrap('succeeds', async () => 'not loaded again')).toBe('kept');
    expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
  });

  it('an already aborted signal rejects at once and starts no loader', async () => {
    const cache = newCache({ namespace: 'pre-aborted' });
    const loader = counted(() => 'v');
    await expect(
      cache.wrap('k', loader, { signal: AbortSignal.abort(new Error('too late')) }),
    ).rejects.toThrow('too late');
    expect(loader.runs).toBe(0);
  });

  it('AbortSignal.timeout() bounds how long one caller waits for a slow loader', async () => {
    const cache = newCache({ namespace: 'abort-timeout' });
    const hold = gate();
    const slow = cache.wrap('k', async () => {
      await hold.opened;
      return 'slow';
    });
    await expect(cache.wrap('k', async () => 'x', { signal: AbortSignal.timeout(50) })).rejects.toMatchObject(
      {
        name: 'TimeoutError',
      },
    );
    hold.open();
    expect(await slow).toBe('slow');
  });
});

describe('waiting for another process', () => {
  it('waits without holding a connection, and takes the value the holder writes', async () => {
    const namespace = 'waiter';
    const cache = newCache({ namespace });
    await cache.init();
    const other = await holdLock(namespace, 'k');
    try {
      // Each look, and each try of the lock, takes a pool connection for one statement.
      let statements = 0;
      cache.adapter.pool.on('acquire', () => statements++);
      const loader = counted(() => 'mine');
      const waiting = cache.wrap('k', loader, { lockTimeout: 30_000, onLockTimeout: 'throw' });
      // It has looked, found the lock taken, waited, and looked again ...
      expect(await eventually(() => statements >= 3)).toBe(true);
      // ... and between looks it waits with every pool connection idle.
      expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
      // The "holder" writes through Keyv; the change event wakes the waiter.
      await new Keyv({ store: newCache(), namespace }).set('k', 'theirs');
      expect(await waiting).toBe('theirs');
      expect(loader.runs).toBe(0);
    } finally {
      await other.release();
    }
  });

  it('without notifications, finds the holder’s value by polling', async () => {
    const namespace = 'polling';
    const cache = newCache({ namespace, notifications: false });
    const other = await holdLock(namespace, 'k');
    try {
      const loader = counted(() => 'mine');
      const waiting = cache.wrap('k', loader, {
        lockTimeout: 30_000,
        onLockTimeout: 'throw',
        maxPollInterval: 50,
      });
      await new Keyv({ store: newCache({ notifications: false }), namespace }).set('k', 'theirs');
      expect(await waiting).toBe('theirs');
      expect(loader.runs).toBe(0);
    } finally {
      await other.release();
    }
  });

  it("takes over once the holder's session ends without a write", async () => {
    const namespace = 'takeover';
    const cache = newCache({ namespace });
    const other = await holdLock(namespace, 'k');
    const loader = counted(() => 'mine');
    const waiting = cache.wrap('k', loader, { lockTimeout: 30_000, onLockTimeout: 'throw' });
    expect(await eventually(() => cache.adapter.pool.totalCount > 0)).toBe(true);
    expect(loader.runs).toBe(0);
    await other.release();
    expect(await waiting).toBe('mine');
    expect(loader.runs).toBe(1);
  });

  it("with onLockTimeout 'throw', rejects with LockTimeoutError once lockTimeout has passed", async () => {
    const namespace = 'lock-timeout-throw';
    const cache = newCache({ namespace });
    const other = await holdLock(namespace, 'k');
    try {
      const loader = counted(() => 'mine');
      const calls = Array.from({ length: 5 }, () =>
        cache.wrap('k', loader, { lockTimeout: 300, onLockTimeout: 'throw' }),
      );
      for (const outcome of await Promise.allSettled(calls)) {
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(LockTimeoutError);
        expect((outcome as PromiseRejectedResult).reason.code).toBe('ERR_PGCACHE_LOCK_TIMEOUT');
      }
      expect(loader.runs).toBe(0);
      expect(await eventually(() => poolIsIdle(cache.adapter.pool))).toBe(true);
    } finally {
      await other.release();
    }
  });

  it("with onLockTimeout 'load' (the default), runs the loader itself once lockTimeout has passed", async () => {
    const namespace = 'lock-timeout-load';
    const cache = newCache({ namespace, wrap: { lockTimeout: 300 } });
    const other = await holdLock(namespace, 'k');
    try {
      const loader = counted(() => 'loaded anyway');
      const calls = Array.from({ length: 5 }, () => cache.wrap('k', loader));
      expect(await Promise.all(calls)).toEqual(Array(5).fill('loaded anyway'));
      expect(loader.runs).toBe(1);
      expect(await storedCount(namespace)).toBe(1);
    } finally {
      await other.release();
    }
  });
});

describe("the server's idle_session_timeout", () => {
  it('does not end a session-mode holder whose loader outlasts it (the lock would go, and its write fail)', async () => {
    const idlePool = new pg.Pool({
      connectionString: databaseUrl(),
      max: 4,
      options: '-c idle_session_timeout=300',
    });
    idlePool.on('error', () => undefined);
    const cache = newCache({
      namespace: 'idle-session',
      pool: idlePool,
      listenerConnectionString: databaseUrl(),
      wrap: { lockMode: 'session' },
    });
    try {
      const loader = counted(async () => {
        await sleep(800);
        return 'slow';
      });
      expect(await cache.wrap('k', loader)).toBe('slow');
      // The holder's connection went back to the pool with the server's setting as it was. Asked at once: the
      // pool hands out the connection released last, which the server ends once it idles past 300 ms.
      const { rows } = await idlePool.query("SELECT current_setting('idle_session_timeout') AS idle");
      expect(rows[0]?.idle).toBe('300ms');
      expect(loader.runs).toBe(1);
      expect(await storedCount('idle-session')).toBe(1);
      expect(await lockHolders(pool, lockOf(schema, 'idle-session', 'k'))).toBe(0);
    } finally {
      await cache.disconnect();
      await idlePool.end();
    }
  });
});

describe('a cache that is closed', () => {
  it('rejects wrap() with DisconnectedError, without running the loader', async () => {
    const cache = newCache({ namespace: 'closed' });
    await cache.disconnect();
    const loader = counted(() => 'v');
    await expect(cache.wrap('k', loader)).rejects.toMatchObject({ code: 'ERR_PGCACHE_DISCONNECTED' });
    expect(loader.runs).toBe(0);
  });

  it('answers fills in flight and fills queued for a holder permit with DisconnectedError', async () => {
    // A pool of two: one holder at a time, the other fills queue in memory.
    const cache = newCache({ namespace: 'closing', poolSize: 2 });
    const hold = gate();
    const loader = counted(async () => {
      await hold.opened;
      return 'late';
    });
    const calls = ['a', 'b', 'c'].map((key) => cache.wrap(key, loader));
    expect(await eventually(() => loader.runs === 1)).toBe(true);
    const closing = cache.disconnect();
    hold.open();
    const outcomes = await Promise.allSettled(calls);
    await closing;
    for (const outcome of outcomes) {
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_PGCACHE_DISCONNECTED' });
    }
    expect(loader.runs).toBe(1);
  });

  it("answers a fill waiting for another session's holder with DisconnectedError, without waiting for its next look", async () => {
    const namespace = 'closing-waiter';
    // Nothing but a change event or the disconnect would wake the waiter before its 30 s poll.
    const cache = newCache({ namespace, wrap: { lockTimeout: 60_000, maxPollInterval: 30_000 } });
    const other = await holdLock(namespace, 'k');
    try {
      const loader = counted(() => 'mine');
      const waiting = cache.wrap('k', loader).then(
        () => 'resolved',
        (error: unknown) => error,
      );
      // Looks come at 20 ms, then twice as far apart each time: 5.5 s in, the next is about 5 s away.
      await sleep(5500);
      await cache.disconnect();
      const outcome = await Promise.race([waiting, sleep(3000).then(() => 'still waiting')]);
      expect(outcome).toMatchObject({ code: 'ERR_PGCACHE_DISCONNECTED' });
      expect(loader.runs).toBe(0);
    } finally {
      await other.release();
    }
  }, 30_000);
});
