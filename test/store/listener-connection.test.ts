import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, PostgresAdapter, PostgresCache } from '../../src/index.js';
import type { PgListener } from '../../src/notify/listener.js';
import { leaseListener } from '../../src/notify/shared-listener.js';
import { listenerConnection } from '../../src/store/listener-connection.js';
import {
  adminPool,
  databaseUrl,
  dropSchema,
  eventually,
  outcomeWithin,
  sleep,
  uniqueSchema,
} from '../support/database.js';

// DATABASE_URL is a default for a cache given no connection at all. A cache given a pool, or the pool's
// settings, must listen where that pool writes: a listener on another database hears none of the pool's
// changes, while the checks made through the pool find the trigger and trust the L1.
const schema = uniqueSchema('listener_connection');
const pool = adminPool();
const savedUrl = process.env.DATABASE_URL;

/** The same server, another database: where a listener that followed DATABASE_URL would be. */
let otherDatabase = 'postgres';
function elsewhere(): string {
  const url = new URL(databaseUrl());
  url.pathname = `/${otherDatabase}`;
  return url.toString();
}

/** The test database as separate settings, not a URL (whatever DATABASE_URL says then cannot override them). */
function serverSettings(): pg.PoolConfig {
  const url = new URL(databaseUrl());
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username) || undefined,
    password: decodeURIComponent(url.password) || undefined,
    database: url.pathname.slice(1),
  };
}

async function tableExistsIn(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [
      `"${schema}".pgcache_entries`,
    ]);
    return rows[0]?.found === true;
  } finally {
    await client.end();
  }
}

const caches: PostgresCache[] = [];
function newCache(options: ConstructorParameters<typeof PostgresCache>[0]): PostgresCache {
  const cache = new PostgresCache({ schema, sweepInterval: 0, ...options });
  caches.push(cache);
  return cache;
}

/** `reader` hears a change another cache makes on the pool's database, and drops its L1 copy. */
async function hearsWrites(reader: PostgresCache): Promise<boolean> {
  const writer = newCache({ connectionString: databaseUrl() });
  await Promise.all([reader.init(), writer.init()]);
  await writer.set('k', 'v1');
  expect(await reader.get('k')).toBe('v1');
  expect(reader.coherent).toBe(true);
  await writer.set('k', 'v2');
  return eventually(async () => (await reader.get('k')) === 'v2', 3000);
}

beforeAll(async () => {
  // The embedded server's tests run in `postgres` itself.
  const { rows } = await pool.query('SELECT current_database() AS name');
  if (rows[0]?.name === 'postgres') otherDatabase = 'template1';
  await PostgresCache.initDb({ connectionString: databaseUrl(), schema });
});
afterEach(async () => {
  process.env.DATABASE_URL = savedUrl;
  await Promise.all(caches.splice(0).map((cache) => cache.disconnect()));
});
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
  // Where a cache that followed DATABASE_URL would have created its tables.
  const other = new pg.Client({ connectionString: elsewhere() });
  await other.connect();
  await other.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await other.end();
});

describe('where the listener connects', () => {
  it('with a supplied pool: where the pool does, whatever DATABASE_URL names', async () => {
    process.env.DATABASE_URL = elsewhere();
    expect(await hearsWrites(newCache({ pool }))).toBe(true);
  });

  it('with poolConfig naming the server: there, for the pool and the listener alike', async () => {
    process.env.DATABASE_URL = elsewhere();
    const cache = newCache({ poolConfig: serverSettings() });
    expect(await hearsWrites(cache)).toBe(true);
    expect(await tableExistsIn(elsewhere())).toBe(false);
  });

  it('a listener that hears another database than the pool keeps L1 bypassed, and says why', async () => {
    const cache = newCache({ listenerConnectionString: elsewhere(), connectionTimeout: 1000 });
    const errors: Error[] = [];
    cache.on('error', (error) => errors.push(error));
    // Its LISTEN works, and the trigger notifies its channel: only a probe through the pool that never
    // comes back on the listener shows that no change event will.
    const started = await outcomeWithin(cache.init(), 5000);
    expect(started).toBeInstanceOf(ConnectionError);
    expect((started as Error).message).toMatch(/not seen to reach the listener .*probe/);
    expect(await eventually(() => errors.length > 0, 5000)).toBe(true);
    expect(errors[0]).toBeInstanceOf(ConnectionError);
    expect(errors[0]?.message).toMatch(/did not reach its listener .*listenerConnectionString/);
    expect(cache.coherent).toBe(false);
    const writer = newCache({ connectionString: databaseUrl() });
    await writer.set('elsewhere', 'v1');
    expect(await cache.get('elsewhere')).toBe('v1');
    await writer.set('elsewhere', 'v2');
    expect(await cache.get('elsewhere')).toBe('v2');
    expect(cache.stats.l1.hits).toBe(0);
  });

  it("takes the pool's settings whenever there is more to them than a URL (TLS, a password)", async () => {
    const url = databaseUrl();
    const ssl = { rejectUnauthorized: false };
    const withUrlOnly = new PostgresAdapter({ connectionString: url, sweepInterval: 0 });
    const withTls = new PostgresAdapter({ connectionString: url, poolConfig: { ssl }, sweepInterval: 0 });
    const supplied = new PostgresAdapter({ pool, connectionString: elsewhere(), sweepInterval: 0 });
    try {
      expect(listenerConnection(withUrlOnly, undefined)).toBe(url);
      expect(listenerConnection(withTls, undefined)).toMatchObject({ connectionString: url, ssl });
      // Named alongside a pool, a URL is ignored, as documented: the listener goes where the pool does.
      expect(listenerConnection(supplied, undefined)).toBe((pool as unknown as { options: object }).options);
      expect(listenerConnection(supplied, url)).toBe(url);
    } finally {
      await Promise.all([withUrlOnly, withTls, supplied].map((adapter) => adapter.disconnect()));
    }
  });

  it("connects with a supplied pool's password (which pg-pool keeps from enumeration)", async () => {
    const withPassword = new pg.Pool({ ...serverSettings(), password: 'listener-secret', max: 2 });
    try {
      const cache = newCache({ pool: withPassword });
      await cache.init();
      // This server trusts every connection, so only the client's own settings show which password it had.
      const { client } = (cache as unknown as { lease: { listener: { client: pg.Client } } }).lease.listener;
      expect((client as unknown as { password: unknown }).password).toBe('listener-secret');
    } finally {
      await Promise.all(caches.splice(0).map((cache) => cache.disconnect()));
      await withPassword.end();
    }
  });

  it('shares a LISTEN connection only between settings that agree, TLS callbacks and contexts included', async () => {
    const url = databaseUrl();
    const strict = () => undefined;
    const lenient = () => undefined;
    const lease = (ssl: object) => leaseListener({ connection: { connectionString: url, ssl } });
    const leases = [
      lease({ checkServerIdentity: strict }),
      lease({ checkServerIdentity: strict }),
      lease({ checkServerIdentity: lenient }),
      lease({ secureContext: new (class Context {})() }),
      lease({ secureContext: new (class Context {})() }),
    ];
    try {
      const [a, b, c, d, e] = leases.map((each) => each.listener);
      expect(a).toBe(b);
      expect(c).not.toBe(a);
      expect(d).not.toBe(e);
    } finally {
      await Promise.all(leases.map((each) => each.release()));
    }
  });

  it('does not share a LISTEN connection between settings that name another database, role, host or port', async () => {
    const settings = serverSettings();
    const leases = [
      settings,
      { ...settings },
      { ...settings, database: otherDatabase },
      { ...settings, user: 'someone_else' },
      { ...settings, host: '127.0.0.2' },
      { ...settings, port: (settings.port ?? 5432) + 1 },
    ].map((connection) => leaseListener({ connection }));
    try {
      const [same, alike, ...others] = leases.map((each) => each.listener);
      expect(alike).toBe(same);
      // Each one hears its own database (or none): sharing would leave a cache deaf to its writes.
      expect(new Set([same, ...others]).size).toBe(1 + others.length);
    } finally {
      await Promise.all(leases.map((each) => each.release()));
    }
  });

  it('a cache that disconnects leaves the LISTEN connection it shares open for the others', async () => {
    const leaving = newCache({ connectionString: databaseUrl() });
    const staying = newCache({ connectionString: databaseUrl() });
    const writer = newCache({ connectionString: databaseUrl() });
    await Promise.all([leaving.init(), staying.init(), writer.init()]);
    const pid = staying.stats.listener.backendPid;
    expect(leaving.stats.listener.backendPid).toBe(pid);
    await leaving.disconnect();

    await writer.set('shared', 'v1');
    expect(await staying.get('shared')).toBe('v1');
    await writer.set('shared', 'v2');
    // Its L1 copy is dropped by the change event: the connection is still there, still LISTENing.
    expect(await eventually(async () => (await staying.get('shared')) === 'v2', 3000)).toBe(true);
    expect(staying.coherent).toBe(true);
    expect(staying.stats.listener.backendPid).toBe(pid);
  });

  it('caches that connect alike share one LISTEN connection; others do not', async () => {
    const url = databaseUrl();
    const byUrl = newCache({ connectionString: url });
    // The same server, role and database: its listener is given the pool's settings, not the URL.
    const byUrlAndPoolSize = newCache({ connectionString: url, poolConfig: { max: 3 } });
    const otherDatabase = newCache({ listenerConnectionString: elsewhere() });
    otherDatabase.on('error', () => undefined);
    // It never becomes coherent (its probes cannot come back), but its listener connects.
    otherDatabase.init().catch(() => undefined);
    await Promise.all([byUrl.init(), byUrlAndPoolSize.init()]);
    const pid = byUrl.stats.listener.backendPid;
    expect(pid).toBeGreaterThan(0);
    expect(byUrlAndPoolSize.stats.listener.backendPid).toBe(pid);
    expect(await eventually(() => (otherDatabase.stats.listener.backendPid ?? 0) > 0, 10_000)).toBe(true);
    expect(otherDatabase.stats.listener.backendPid).not.toBe(pid);
  });

  it('with nothing given: DATABASE_URL, for the pool and the listener alike', async () => {
    process.env.DATABASE_URL = databaseUrl();
    expect(await hearsWrites(newCache({}))).toBe(true);
  });
});

describe('the probe before L1 is trusted', () => {
  it('a probe lost with its listener gives way to the next connection at once', async () => {
    const cache = newCache({ connectionTimeout: 4000, reconnect: { initialDelay: 200, maxDelay: 200 } });
    cache.on('error', () => undefined);
    await cache.init();
    const listener = (cache as unknown as { lease: { listener: PgListener } }).lease.listener;
    const kill = (pid: number | undefined) => pool.query('SELECT pg_terminate_backend($1)', [pid]);
    // The first probe after the reconnect goes out once its listener is gone again: it cannot come back.
    const { adapter } = cache;
    const execute = adapter.execute.bind(adapter);
    let killBeforeProbe = false;
    adapter.execute = async (text, values, operation, claim) => {
      if (operation === 'probing change events' && killBeforeProbe) {
        killBeforeProbe = false;
        await kill(listener.backendPid);
      }
      return execute(text, values, operation, claim);
    };
    let connects = 0;
    let lastConnect = 0;
    listener.on('connected', () => {
      connects++;
      lastConnect = Date.now();
      if (connects === 1) killBeforeProbe = true;
    });
    await kill(listener.backendPid);
    expect(await eventually(() => connects >= 2, 10_000)).toBe(true);
    expect(await eventually(() => cache.coherent, 10_000, 5)).toBe(true);
    // A check and a probe's round trip after the last connect, not the 4 s a lost probe would be waited for.
    expect(Date.now() - lastConnect).toBeLessThan(3000);
  });

  it("counts its time from the pool's sending: a busy pool delays trust, and is not taken for a deaf listener", async () => {
    const cache = newCache({ connectionTimeout: 1000 });
    const errors: Error[] = [];
    cache.on('error', (error) => errors.push(error));
    const { adapter } = cache;
    const execute = adapter.execute.bind(adapter);
    // As if every connection of the pool were busy for longer than connectionTimeout.
    adapter.execute = async (text, values, operation, claim) => {
      if (operation === 'probing change events') await sleep(1500);
      return execute(text, values, operation, claim);
    };
    await cache.init().catch(() => undefined);
    expect(await eventually(() => cache.coherent, 5000, 5)).toBe(true);
    expect(errors.filter((error) => /did not reach its listener/.test(error.message))).toEqual([]);
  });
});
