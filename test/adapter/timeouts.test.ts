import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, PostgresAdapter, PostgresCache, QueryError, SchemaError } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, outcomeWithin, uniqueSchema } from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const schema = uniqueSchema('timeouts');
const pool = adminPool();

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('a server that stops answering', () => {
  it("a PostgresCache's init() reports a failure of the tables at once, not after the listener's deadline", async () => {
    const cache = new PostgresCache({
      connectionString: databaseUrl(),
      schema: uniqueSchema('never_created'),
      migrate: false,
      connectionTimeout: 4000,
      sweepInterval: 0,
    });
    cache.on('error', () => undefined);
    try {
      const started = Date.now();
      expect(await outcomeWithin(cache.init(), 6000)).toBeInstanceOf(SchemaError);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await cache.disconnect();
    }
  });

  it("a PostgresCache's failed init() leaves nothing running: a retry once the server answers starts afresh", async () => {
    // Accepts connections and never answers: the tables and the listener both wait out connectionTimeout.
    const proxy = await startTcpProxy(databaseUrl(), 'silent');
    const cache = new PostgresCache({
      connectionString: proxy.url,
      schema,
      connectionTimeout: 800,
      sweepInterval: 0,
      reconnect: { initialDelay: 50, maxDelay: 100 },
    });
    try {
      expect(await outcomeWithin(cache.init(), 6000)).toBeInstanceOf(ConnectionError);
      proxy.mode = 'forward';
      proxy.dropAll();
      // Not the first attempt's error, handed on by a preparation still running when init() gave up.
      expect(await outcomeWithin(cache.init(), 6000)).toBe('resolved');
    } finally {
      await cache.disconnect();
      await proxy.close();
    }
  });

  it('fails start-up with a ConnectionError in time, and disconnect() still returns', async () => {
    // Lets the connection be made, then never answers its first statement (a migration query).
    const proxy = await startTcpProxy(databaseUrl(), 'drop-queries');
    const adapter = new PostgresAdapter({
      connectionString: proxy.url,
      schema,
      statementTimeout: 500,
      connectionTimeout: 500,
      sweepInterval: 0,
    });
    const started = Date.now();
    expect(await outcomeWithin(adapter.init(), 6000)).toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await outcomeWithin(adapter.disconnect(), 2000)).toBe('resolved');
    await proxy.close();
  });

  it('destroys the connection that timed out during start-up instead of returning it to a supplied pool', async () => {
    const proxy = await startTcpProxy(databaseUrl());
    const supplied = new pg.Pool({ connectionString: proxy.url, max: 1, allowExitOnIdle: true });
    supplied.on('error', () => undefined);
    await supplied.query('SELECT 1');
    proxy.stall();
    const adapter = new PostgresAdapter({ pool: supplied, schema, statementTimeout: 500, sweepInterval: 0 });
    expect(await outcomeWithin(adapter.get('k'), 6000)).toBeInstanceOf(ConnectionError);
    expect(supplied.totalCount).toBe(0);
    await adapter.disconnect();
    await supplied.end();
    await proxy.close();
  });

  it('destroys a connection whose statement timed out instead of returning it to a supplied pool', async () => {
    const proxy = await startTcpProxy(databaseUrl());
    const supplied = new pg.Pool({ connectionString: proxy.url, max: 1, allowExitOnIdle: true });
    supplied.on('error', () => undefined);
    const adapter = new PostgresAdapter({ pool: supplied, schema, statementTimeout: 300, sweepInterval: 0 });
    try {
      await adapter.set('k', 'v');
      expect(supplied.totalCount).toBe(1);
      // The server stops answering on the open connection; a new one is forwarded again.
      proxy.stall();
      expect(await outcomeWithin(adapter.get('k'), 6000)).toBeInstanceOf(ConnectionError);
      expect(supplied.totalCount).toBe(0);
      // Reused, the stalled connection would fail the next call too.
      expect(await outcomeWithin(adapter.get('k'), 6000)).toBe('resolved');
      expect(await adapter.get('k')).toBe('v');
    } finally {
      await adapter.disconnect();
      await supplied.end();
      await proxy.close();
    }
  });
});

describe('a statement that runs past statementTimeout', () => {
  it('fails as the server cancel (QueryError, 57014), not as a client-side timeout', async () => {
    // The adapter's own pool, so its sessions carry statement_timeout = statementTimeout.
    const adapter = new PostgresAdapter({
      connectionString: databaseUrl(),
      schema,
      // Its start's catalog reads run under it too: short enough to keep the ten attempts quick, with room for a
      // busy machine (200 ms once cancelled the start itself).
      statementTimeout: 500,
      sweepInterval: 0,
    });
    await adapter.writeEntry('slow', 'k', 'v');
    const holder = await pool.connect();
    await holder.query('BEGIN');
    // Every write of the key now waits on this row lock until a timeout ends it.
    await holder.query(`SELECT 1 FROM "${schema}".pgcache_entries WHERE namespace = 'slow' FOR UPDATE`);
    try {
      for (let attempt = 0; attempt < 10; attempt++) {
        const error = await adapter.writeEntry('slow', 'k', `v${attempt}`).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(QueryError);
        expect((error as QueryError).cause).toMatchObject({ code: '57014' });
      }
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await adapter.disconnect();
    }
  });
});
