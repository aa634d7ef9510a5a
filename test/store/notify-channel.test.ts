import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, PostgresCache, type PostgresCacheOptions, SchemaError } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, sleep, uniqueSchema } from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { type CacheWorker, startWorkers } from '../support/worker-client.js';

// Processes that disagree on notifyChannel: each start with migrate on re-points the trigger to its own
// channel, and those left on the other one must neither serve stale L1 entries nor miss a clear.
const pool = adminPool(2);
const workers: CacheWorker[] = [];
const opened: PostgresCache[] = [];

async function start(schema: string, count: number, notifyChannel?: string): Promise<CacheWorker[]> {
  const env: Record<string, string> = { DATABASE_URL: databaseUrl() };
  if (notifyChannel) env.PGCACHE_NOTIFY_CHANNEL = notifyChannel;
  const started = await startWorkers(schema, count, env);
  workers.push(...started);
  return started;
}

const ALL_FIRE_ALWAYS = {
  pgcache_notify_trigger: 'A',
  pgcache_truncate_trigger: 'A',
  pgcache_version_trigger: 'A',
  pgcache_version_update_trigger: 'A',
};

/** tgenabled of each trigger on the cache table, by name. */
async function triggerStates(entries: string): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ tgname: string; tgenabled: string }>(
    'SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname',
    [entries],
  );
  return Object.fromEntries(rows.map((row) => [row.tgname, row.tgenabled]));
}

const coherent = (worker: CacheWorker) => worker.call<boolean>('coherent');
const l1Hits = async (worker: CacheWorker) => (await worker.call<{ l1: { hits: number } }>('stats')).l1.hits;

/** A cache in this process that records the SchemaErrors it reports. */
async function openCache(schema: string, notifyChannel: string, options: PostgresCacheOptions = {}) {
  const cache = new PostgresCache({
    connectionString: databaseUrl(),
    schema,
    notifyChannel,
    sweepInterval: 0,
    reconnect: { initialDelay: 100, maxDelay: 100 },
    ...options,
  });
  opened.push(cache);
  const schemaErrors: SchemaError[] = [];
  cache.on('error', (error) => {
    if (error instanceof SchemaError) schemaErrors.push(error);
  });
  await cache.init();
  // Each cache here brings a channel of its own, so its start re-pointed the trigger: its own notice comes
  // back, if its LISTEN was in place before the notice was sent (under load it may not be), and it checks
  // once more. Settled once it trusts L1, and again after the notice has had time to come.
  expect(await eventually(() => cache.coherent)).toBe(true);
  await sleep(300);
  expect(await eventually(() => cache.coherent)).toBe(true);
  return { cache, schemaErrors };
}

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await Promise.all(opened.map((cache) => cache.disconnect()));
  await pool.end();
});

describe('a process started with another notifyChannel', () => {
  const schema = uniqueSchema('channel_move');
  beforeAll(() => PostgresCache.initDb({ connectionString: databaseUrl(), schema }), 30_000);
  afterAll(() => dropSchema(schema));

  it('turns off the L1 of the processes it moved the trigger away from, and they see its writes', async () => {
    const [writer, reader] = (await start(schema, 2)) as [CacheWorker, CacheWorker];
    await writer.call('set', { key: 'k', value: 'v1' });
    expect(await reader.call('get', { key: 'k' })).toBe('v1');
    const hits = await l1Hits(reader);
    expect(await reader.call('get', { key: 'k' })).toBe('v1');
    expect(await l1Hits(reader)).toBe(hits + 1);

    const [mover] = (await start(schema, 1, 'moved_events')) as [CacheWorker];
    expect(await eventually(async () => !(await coherent(reader)) && !(await coherent(writer)), 5000)).toBe(
      true,
    );
    // Its own re-point notice reaches it too, and it checks once more: coherent again after that.
    expect(await eventually(() => coherent(mover))).toBe(true);
    await mover.call('set', { key: 'k', value: 'v2' });
    // No event reaches the reader's channel any more: only a bypassed L1 keeps it from serving v1.
    expect(await reader.call('get', { key: 'k' })).toBe('v2');
    expect(await l1Hits(reader)).toBe(hits + 1);
  }, 60_000);

  it("a clear() by a process on the old channel reaches those on the trigger's channel", async () => {
    // The namespace each worker has a cache for already: a new cache there would re-point the trigger itself.
    const [old] = workers as [CacheWorker];
    const mover = workers[2] as CacheWorker;
    await mover.call('set', { key: 'c', value: 'before clear' });
    expect(await mover.call('get', { key: 'c' })).toBe('before clear');
    const hits = await l1Hits(mover);
    const cleared = async () => (await mover.call<{ evictions: { clear: number } }>('stats')).evictions.clear;
    const clearedBefore = await cleared();
    await old.call('clear', {});
    // The event reaches the mover, whose L1 lets the entry go...
    expect(await eventually(async () => (await cleared()) > clearedBefore)).toBe(true);
    // ...and the next read goes to PostgreSQL.
    expect(await mover.call('get', { key: 'c' })).toBeNull();
    expect(await l1Hits(mover)).toBe(hits);
    expect(await coherent(mover)).toBe(true);
  }, 30_000);

  it('once a process moves the trigger back, the first ones use their L1 again and the mover does not', async () => {
    const [writer, reader, mover] = workers as [CacheWorker, CacheWorker, CacheWorker];
    await start(schema, 1);
    expect(await eventually(async () => (await coherent(reader)) && (await coherent(writer)), 5000)).toBe(
      true,
    );
    expect(await eventually(async () => !(await coherent(mover)))).toBe(true);
    await writer.call('set', { key: 'k', value: 'v3' });
    expect(await reader.call('get', { key: 'k' })).toBe('v3');
    const hits = await l1Hits(reader);
    expect(await reader.call('get', { key: 'k' })).toBe('v3');
    expect(await l1Hits(reader)).toBe(hits + 1);
    await writer.call('set', { key: 'k', value: 'v4' });
    expect(await eventually(async () => (await reader.call('get', { key: 'k' })) === 'v4')).toBe(true);
    expect(await mover.call('get', { key: 'k' })).toBe('v4');
  }, 60_000);
});

describe('the first start on a new schema', () => {
  const schema = uniqueSchema('first_start');
  afterAll(() => dropSchema(schema));

  it('its own re-point notice neither turns L1 off nor empties it; a notice of another start naming its channel only empties it', async () => {
    const cache = new PostgresCache({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
    opened.push(cache);
    const seen: string[] = [];
    cache.on('disconnected', () => seen.push('disconnected'));
    cache.on('invalidate', ({ reason }) => seen.push(`invalidate:${reason}`));
    await cache.init();
    expect(cache.coherent).toBe(true);
    cache.namespace = 'first';
    await cache.set('k', 'v');
    // The notice of the trigger this start created, on this cache's channel, has been heard.
    expect(await eventually(() => cache.stats.events.received >= 2)).toBe(true);
    expect(await cache.get('k')).toBe('v');
    expect(cache.stats.l1.hits).toBe(1);
    expect(seen).not.toContain('disconnected');

    const channel = cache.adapter.options.notifyChannel;
    seen.length = 0;
    await pool.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ op: 'repoint', to: channel })]);
    expect(await eventually(() => seen.includes('invalidate:flush'))).toBe(true);
    expect(seen).not.toContain('disconnected');
    expect(cache.coherent).toBe(true);
  }, 30_000);
});

describe('checking where the trigger points', () => {
  const schema = uniqueSchema('channel_check');
  afterAll(() => dropSchema(schema));

  it('a forged repoint notice cannot make a cache trust its L1 while the trigger points elsewhere', async () => {
    const { cache, schemaErrors } = await openCache(schema, 'check_first');
    await PostgresCache.initDb({ connectionString: databaseUrl(), schema, notifyChannel: 'check_second' });
    expect(await eventually(() => schemaErrors.length === 1)).toBe(true);
    expect(cache.coherent).toBe(false);
    expect(schemaErrors[0]?.message).toMatch(
      /notifies "check_second" .*, not this cache's notifyChannel "check_first"/,
    );

    await pool.query(`SELECT pg_notify('check_first', '{"op":"repoint","to":"check_first"}')`);
    // The notice is heard and checked against the catalog, which still says otherwise.
    expect(await eventually(() => schemaErrors.length === 2)).toBe(true);
    expect(cache.coherent).toBe(false);
  }, 30_000);

  it('a notice naming another channel bypasses L1 at once, until the catalog says the trigger still notifies ours', async () => {
    const { cache } = await openCache(schema, 'check_notice');
    cache.namespace = 'notice';
    await cache.set('k', 'v');
    const states: string[] = [];
    cache.on('disconnected', () => states.push(`disconnected with ${cache.stats.l1.size} in L1`));
    cache.on('connected', () => states.push('connected'));
    await pool.query(
      `SELECT pg_notify('check_notice', '{"op":"repoint","to":"check_elsewhere","by":"another start"}')`,
    );
    expect(await eventually(() => states.length === 2)).toBe(true);
    expect(states).toEqual(['disconnected with 0 in L1', 'connected']);
    expect(cache.coherent).toBe(true);
  }, 30_000);

  it('a disabled trigger: a cache that reconnects bypasses L1 and says why; a start with migrate re-enables it', async () => {
    const { cache, schemaErrors } = await openCache(schema, 'check_disabled');
    const entries = `${schema}.pgcache_entries`;
    cache.namespace = 'disabled';
    await cache.set('k', 'v1');
    await pool.query(`ALTER TABLE ${entries} DISABLE TRIGGER pgcache_notify_trigger`);
    await pool.query('SELECT pg_terminate_backend($1)', [cache.stats.listener.backendPid]);
    expect(await eventually(() => schemaErrors.length === 1)).toBe(true);
    expect(schemaErrors[0]?.message).toContain('a trigger on the table is disabled or not ENABLE ALWAYS');
    expect(cache.coherent).toBe(false);
    // What changes now sends no event, and L1 must not hide it.
    await pool.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'disabled'`, ['"v2"']);
    expect(await cache.get('k')).toBe('"v2"');

    await PostgresCache.initDb({ connectionString: databaseUrl(), schema, notifyChannel: 'check_disabled' });
    expect(await triggerStates(entries)).toEqual(ALL_FIRE_ALWAYS);
    expect(await eventually(() => cache.coherent)).toBe(true);
    await pool.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'disabled'`, ['"v3"']);
    expect(await eventually(async () => (await cache.get('k')) === '"v3"')).toBe(true);
  }, 30_000);

  // pg_restore --disable-triggers ends with ENABLE TRIGGER ALL, which leaves them firing in ordinary
  // sessions only: a bulk load in replica mode would then change rows that no L1 hears of.
  it('triggers that are enabled but not ENABLE ALWAYS: the same, and a start without migrate runs with L1 off', async () => {
    const { cache, schemaErrors } = await openCache(schema, 'check_origin');
    const entries = `${schema}.pgcache_entries`;
    expect(await triggerStates(entries)).toEqual(ALL_FIRE_ALWAYS);
    await pool.query(`ALTER TABLE ${entries} DISABLE TRIGGER ALL`);
    await pool.query(`ALTER TABLE ${entries} ENABLE TRIGGER ALL`);
    expect(Object.values(await triggerStates(entries))).toEqual(['O', 'O', 'O', 'O']);
    await pool.query('SELECT pg_terminate_backend($1)', [cache.stats.listener.backendPid]);
    expect(await eventually(() => schemaErrors.length === 1)).toBe(true);
    expect(schemaErrors[0]?.message).toContain('not ENABLE ALWAYS');
    expect(cache.coherent).toBe(false);

    const strict = new PostgresCache({
      connectionString: databaseUrl(),
      schema,
      notifyChannel: 'check_origin',
      migrate: false,
      sweepInterval: 0,
    });
    opened.push(strict);
    const strictErrors: Error[] = [];
    strict.on('error', (error) => strictErrors.push(error));
    await strict.init();
    expect(strict.coherent).toBe(false);
    expect(strictErrors.map((error) => error.message)).toEqual([
      expect.stringContaining('not ENABLE ALWAYS'),
    ]);

    await PostgresCache.initDb({ connectionString: databaseUrl(), schema, notifyChannel: 'check_origin' });
    expect(await triggerStates(entries)).toEqual(ALL_FIRE_ALWAYS);
    expect(await eventually(() => cache.coherent && strict.coherent)).toBe(true);
  }, 30_000);

  it('a trigger disabled while caches run is noticed by the periodic check, which otherwise leaves L1 alone', async () => {
    const { cache, schemaErrors } = await openCache(schema, 'check_periodic', { triggerCheckInterval: 100 });
    const entries = `${schema}.pgcache_entries`;
    cache.namespace = 'periodic';
    await cache.set('k', 'v1');
    const hitsBefore = cache.stats.l1.hits;
    let checks = 0;
    const read = cache.adapter.triggerState.bind(cache.adapter);
    cache.adapter.triggerState = () => {
      checks++;
      return read();
    };
    // Checks that say yes keep what L1 holds.
    expect(await eventually(() => checks >= 3)).toBe(true);
    expect(await cache.get('k')).toBe('v1');
    expect(cache.stats.l1.hits).toBe(hitsBefore + 1);

    await pool.query(`ALTER TABLE ${entries} DISABLE TRIGGER pgcache_notify_trigger`);
    try {
      expect(await eventually(() => !cache.coherent)).toBe(true);
      expect(cache.stats.l1.size).toBe(0);
      await pool.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'periodic'`, ['"v2"']);
      expect(await cache.get('k')).toBe('"v2"');
      // Said once, when it turned to no, not at every check after.
      const checksThen = checks;
      expect(await eventually(() => checks >= checksThen + 3)).toBe(true);
      expect(schemaErrors.map((error) => error.message)).toEqual([
        expect.stringContaining('a trigger on the table is disabled or not ENABLE ALWAYS'),
      ]);
    } finally {
      await pool.query(`ALTER TABLE ${entries} ENABLE ALWAYS TRIGGER pgcache_notify_trigger`);
    }
    // Enabled again by hand, without a notice: the next check trusts L1 again.
    expect(await eventually(() => cache.coherent)).toBe(true);
    await pool.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'periodic'`, ['"v3"']);
    expect(await eventually(async () => (await cache.get('k')) === '"v3"')).toBe(true);
  }, 30_000);

  it('a trigger disabled and enabled again between two periodic checks: the next check empties L1', async () => {
    const { cache } = await openCache(schema, 'check_flap', { triggerCheckInterval: 300 });
    const entries = `${schema}.pgcache_entries`;
    cache.namespace = 'flap';
    await cache.set('k', 'v1');
    let checks = 0;
    const read = cache.adapter.triggerState.bind(cache.adapter);
    cache.adapter.triggerState = () => {
      checks++;
      return read();
    };
    // Right after a check, so that the next one sees the trigger enabled again, as the last one did.
    expect(await eventually(() => checks >= 1, 5000, 1)).toBe(true);
    await sleep(50);
    await pool.query(`ALTER TABLE ${entries} DISABLE TRIGGER pgcache_notify_trigger`);
    try {
      await pool.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'flap'`, ['"v2"']);
    } finally {
      await pool.query(`ALTER TABLE ${entries} ENABLE ALWAYS TRIGGER pgcache_notify_trigger`);
    }
    const checksThen = checks;
    expect(await eventually(() => checks >= checksThen + 2)).toBe(true);
    expect(cache.coherent).toBe(true);
    expect(await cache.get('k')).toBe('"v2"');
  }, 30_000);

  it("a periodic check does not trust L1 while this cache's own LISTEN is still on its way", async () => {
    const proxy = await startTcpProxy(databaseUrl());
    const firstSchema = uniqueSchema('listen_first');
    const common = {
      listenerConnectionString: proxy.url,
      heartbeatInterval: 15_000,
      heartbeatTimeout: 15_000,
    };
    try {
      // Another cache's: the process's LISTEN connection is up, then stops answering, unnoticed as yet.
      await openCache(firstSchema, 'check_listen_first', common);
      proxy.stall();
      const late = new PostgresCache({
        connectionString: databaseUrl(),
        schema,
        notifyChannel: 'check_listen_late',
        sweepInterval: 0,
        connectionTimeout: 1000,
        triggerCheckInterval: 20,
        ...common,
      });
      opened.push(late);
      late.on('error', () => undefined);
      await expect(late.init()).rejects.toBeInstanceOf(ConnectionError);
      late.namespace = 'listen_late';
      await late.set('k', 'v1');
      await sleep(300);
      expect(late.coherent).toBe(false);
      await pool.query(`UPDATE ${schema}.pgcache_entries SET value = 'v2' WHERE namespace = 'listen_late'`);
      expect(await late.get('k')).toBe('v2');
    } finally {
      await proxy.close();
      await dropSchema(firstSchema);
    }
  }, 30_000);

  it('a flood of forged notices runs one catalog query at a time, and L1 is trusted again after it', async () => {
    const { cache } = await openCache(schema, 'check_flood');
    await PostgresCache.initDb({ connectionString: databaseUrl(), schema, notifyChannel: 'check_flood' });
    expect(await eventually(() => cache.coherent)).toBe(true);
    const read = cache.adapter.triggerState.bind(cache.adapter);
    let inFlight = 0;
    let mostInFlight = 0;
    let queries = 0;
    cache.adapter.triggerState = async () => {
      queries++;
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      try {
        return await read();
      } finally {
        inFlight--;
      }
    };
    const received = cache.stats.events.received;
    // Each one different: PostgreSQL delivers identical notices of one transaction once.
    await pool.query(
      `SELECT pg_notify('check_flood', json_build_object('op', 'repoint', 'n', i)::text) FROM generate_series(1, 500) i`,
    );
    expect(await eventually(() => cache.stats.events.received >= received + 500)).toBe(true);
    expect(await eventually(() => cache.coherent)).toBe(true);
    expect(mostInFlight).toBe(1);
    expect(queries).toBeLessThan(500);
  }, 30_000);

  it('a trigger moved while the LISTEN connection was down is noticed when it comes back', async () => {
    // The listener goes through a proxy, so that it stays down (its LISTEN unanswered) for as long as we like.
    const proxy = await startTcpProxy(databaseUrl());
    try {
      const { cache, schemaErrors } = await openCache(schema, 'check_third', {
        listenerConnectionString: proxy.url,
        // Short, so that an attempt stuck on the dropped LISTEN ends soon after the proxy forwards again.
        connectionTimeout: 3000,
      });
      proxy.mode = 'drop-queries';
      proxy.dropAll();
      expect(await eventually(() => !cache.coherent, 15_000, 1)).toBe(true);
      // The notice goes out now, while nobody listens on check_third: the reconnect must find out by itself.
      await PostgresCache.initDb({ connectionString: databaseUrl(), schema, notifyChannel: 'check_fourth' });
      proxy.mode = 'forward';
      expect(await eventually(() => cache.stats.listener.connected, 20_000)).toBe(true);
      expect(await eventually(() => schemaErrors.length >= 1)).toBe(true);
      expect(cache.coherent).toBe(false);
    } finally {
      await proxy.close();
    }
  }, 30_000);
});
