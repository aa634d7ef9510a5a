import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCache } from '../../src/index.js';
import { type EmbeddedServer, startEmbeddedPostgres } from '../../support/embedded-postgres.js';
import { runScript } from '../support/child.js';
import { eventually, sleep } from '../support/database.js';
import { type CacheWorker, startWorkers, type WorkerError } from '../support/worker-client.js';
import { lockOf } from '../wrap/support.js';

// This file stops and starts PostgreSQL, so it has a server of its own whatever DATABASE_URL says.
let server: EmbeddedServer;
let workers: CacheWorker[] = [];
const schema = 'recovery';

beforeAll(async () => {
  server = await startEmbeddedPostgres();
  await PostgresCache.initDb({ connectionString: server.url, schema });
  workers = await startWorkers(schema, 3, { DATABASE_URL: server.url });
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await server.stop();
});

/** Runs a call and reports how it settled and how long it took. */
async function settle(call: Promise<unknown>) {
  const started = Date.now();
  try {
    return { value: await call, code: undefined, ms: Date.now() - started };
  } catch (error) {
    return { value: undefined, code: (error as WorkerError).code, ms: Date.now() - started };
  }
}

describe('PostgreSQL stopped and started', () => {
  it('fails with typed errors while down, without hanging, and recovers by itself', async () => {
    const [a, b, c] = workers as [CacheWorker, CacheWorker, CacheWorker];
    await a.call('set', { key: 'k', value: 'before' });
    expect(await b.call('get', { key: 'k' })).toBe('before');
    expect(await c.call('get', { key: 'k' })).toBe('before');

    const restarted = server.restart(4000);
    await sleep(1000);
    const whileDown = await Promise.all([
      settle(a.call('get', { key: 'k' })),
      settle(b.call('get', { key: 'k' })),
      settle(a.call('set', { key: 'k', value: 'lost' })),
      settle(b.call('delete', { key: 'k' })),
      settle(c.call('get', { key: 'k' })),
      settle(c.call('clear')),
    ]);
    for (const outcome of whileDown) {
      expect(outcome.code).toBe('ERR_PGCACHE_CONNECTION');
      // A stopped server refuses connections at once; at worst a call waits out the workers' 2 s statement
      // and connection timeouts, plus the 1 s the client adds to a statement's before it gives up itself.
      expect(outcome.ms).toBeLessThan(3500);
    }
    await restarted;

    const recovered = await eventually(
      async () => {
        const outcome = await settle(a.call('set', { key: 'k', value: 'after' }));
        return outcome.code === undefined;
      },
      20_000,
      200,
    );
    expect(recovered).toBe(true);
    expect(
      await eventually(
        async () => (await settle(b.call('get', { key: 'k' }))).value === 'after',
        20_000,
        200,
      ),
    ).toBe(true);
    expect(await eventually(async () => (await b.call('coherent')) === true, 20_000, 100)).toBe(true);
    // Coherent again: a change on one process reaches the other's L1.
    expect(await b.call('get', { key: 'k' })).toBe('after');
    await a.call('set', { key: 'k', value: 'final' });
    expect(await eventually(async () => (await b.call('get', { key: 'k' })) === 'final')).toBe(true);
  }, 90_000);
});

describe('disconnect()', () => {
  it('leaves nothing that keeps the process alive', async () => {
    const result = await runScript('disconnect-exits.ts', [schema], { DATABASE_URL: server.url }, 20_000);
    expect(result.stdout.trim()).toBe('disconnected');
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
  });

  it('settles when called while the listener is still connecting', async () => {
    const result = await runScript(
      'disconnect-exits.ts',
      [schema, 'early'],
      { DATABASE_URL: server.url },
      20_000,
    );
    // Node exits with 13 when a top-level await never settles.
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe('disconnected');
  });

  it('called twice, resolves the second call only once the first has closed everything', async () => {
    const cache = new PostgresCache({ connectionString: server.url, schema, sweepInterval: 0 });
    await cache.init();
    const listener = cache.stats.listener.backendPid;
    expect(listener).toBeTypeOf('number');
    const first = cache.disconnect();
    await cache.disconnect();
    // A shutdown hook that awaited the second call may assume the pool and the LISTEN connection are gone.
    expect(cache.adapter.pool.ended).toBe(true);
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      const { rows } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [listener]);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
    await first;
  });
});

describe('a call awaited with nothing else to do in the process', () => {
  const awaitOneCall = (mode: 'init' | 'wrap') =>
    runScript('awaits-one-call.ts', [schema, mode], { DATABASE_URL: server.url }, 20_000);

  it('init() keeps the process alive until it fails on a listener that cannot connect', async () => {
    const result = await awaitOneCall('init');
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'rejected ERR_PGCACHE_CONNECTION' });
  });

  it("wrap() keeps the process alive while another process's fill holds the key", async () => {
    const holder = new pg.Client({ connectionString: server.url });
    await holder.connect();
    try {
      const [lockClass, id] = lockOf(schema, 'keyv', 'k');
      await holder.query('SELECT pg_advisory_lock($1, $2)', [lockClass, id]);
      const result = await awaitOneCall('wrap');
      expect(result.code, result.stderr).toBe(0);
      const { outcome, ms } = JSON.parse(result.stdout);
      expect(outcome).toBe('resolved loaded');
      // It waited for the holder until lockTimeout (1.5 s), then loaded itself (onLockTimeout 'load').
      expect(ms).toBeGreaterThanOrEqual(1400);
    } finally {
      await holder.end();
    }
  });
});
