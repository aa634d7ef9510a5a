import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheTags,
  ConnectionError,
  cached,
  InvalidOptionError,
  installTableWatch,
  invalidateOnTableChange,
  listTableWatches,
  PostgresCache,
  uninstallTableWatch,
  windowed,
} from '../../src/index.js';
import {
  adminPool,
  databaseUrl,
  dropSchema,
  eventually,
  outcomeWithin,
  uniqueSchema,
} from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { q } from './support.js';

// What one bad rule, row, handler or notice must not do to the evictions of everything else.
const schema = uniqueSchema('tw_faults');
const pool = adminPool();
const users = `${q(schema)}.users`;
let cache: PostgresCache;
let channel: string;
const closers: Array<{ close(): Promise<void> }> = [];
const track = <T extends { close(): Promise<void> }>(thing: T): T => {
  closers.push(thing);
  return thing;
};

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
  await pool.query(`CREATE TABLE ${users} (id text PRIMARY KEY, name text)`);
  await pool.query(`CREATE TABLE ${q(schema)}.nokey (id int, name text)`);
  channel = (await installTableWatch(pool, { schema, table: 'users', cacheSchema: schema })).channel;
  await installTableWatch(pool, { schema, table: 'nokey', cacheSchema: schema, keyColumns: [] });
  cache = new PostgresCache({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
  cache.on('error', () => undefined);
  await cache.init();
});
afterAll(async () => {
  await Promise.all(closers.map((closer) => closer.close()));
  await cache.disconnect();
  await dropSchema(schema);
  await pool.end();
});

describe('a key or tag the store refuses', () => {
  it('in a forged event (a NUL in the key) does not hold up the evictions after it', async () => {
    await pool.query(`INSERT INTO ${users} VALUES ('1', 'a') ON CONFLICT (id) DO UPDATE SET name = 'a'`);
    await cache.set('user:1', 'a');
    const rule = track(invalidateOnTableChange(cache, { table: 'users', keys: (row) => [`user:${row.id}`] }));
    rule.on('error', () => undefined);
    await rule.ready;
    const forged = JSON.stringify({ op: 'delete', schema, table: 'users', old: { id: '\u0000' } });
    await pool.query('SELECT pg_notify($1, $2)', [channel, forged]);
    await pool.query(`UPDATE ${users} SET name = 'b' WHERE id = '1'`);
    expect(await eventually(async () => (await cache.get('user:1')) === undefined)).toBe(true);
    expect(rule.trusted).toBe(true);
  });

  it('from a row whose tag is longer than a tag may be does not hold up the evictions after it', async () => {
    const tags = new CacheTags(cache);
    await tags.set('profile:1', 'a', { tags: ['user:1'] });
    const rule = track(invalidateOnTableChange(cache, { table: 'users', tags: (row) => [`user:${row.id}`] }));
    rule.on('error', () => undefined);
    await rule.ready;
    await pool.query(`INSERT INTO ${users} VALUES (repeat('x', 1100), 'a long id')`);
    await pool.query(`UPDATE ${users} SET name = 'c' WHERE id = '1'`);
    expect(await eventually(async () => (await cache.get('profile:1')) === undefined)).toBe(true);
    expect(rule.trusted).toBe(true);
  });
});

describe('a tag statement on a connection that stopped answering', () => {
  it('fails as a ConnectionError within the client deadline, and disconnect() still returns', async () => {
    const proxy = await startTcpProxy(databaseUrl());
    const silent = new PostgresCache({
      connectionString: proxy.url,
      schema,
      statementTimeout: 500,
      notifications: false,
      sweepInterval: 0,
    });
    silent.on('error', () => undefined);
    try {
      const tags = new CacheTags(silent);
      // Opens the connection the tagged write will find idle (a plain set: no tag pruning runs after it).
      await silent.set('stalled:1', 'a');
      // Nothing more gets through, and no error or end says so: only the client's deadline can tell.
      proxy.stall();
      const tagged = tags.set('stalled:2', 'b', { tags: ['stalled'] });
      expect(await outcomeWithin(tagged, 10_000)).toBeInstanceOf(ConnectionError);
      expect(await outcomeWithin(silent.disconnect(), 10_000)).toBe('resolved');
    } finally {
      await proxy.close();
    }
  }, 40_000);
});

describe('a rule on a table that sends no events to its channel', () => {
  it('is reported once listening: a missing table, one not watched, one watched for another cache location, one not for every session, one inherited from', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.unwatched (id int PRIMARY KEY)`);
    await pool.query(`CREATE TABLE ${q(schema)}.restored (id int PRIMARY KEY)`);
    await installTableWatch(pool, { schema, table: 'restored', cacheSchema: schema });
    // As pg_restore --disable-triggers leaves them: enabled for ordinary sessions only.
    await pool.query(`ALTER TABLE ${q(schema)}.restored DISABLE TRIGGER ALL`);
    await pool.query(`ALTER TABLE ${q(schema)}.restored ENABLE TRIGGER ALL`);
    await pool.query(`CREATE TABLE ${q(schema)}.elsewhere (id int PRIMARY KEY)`);
    const other = await installTableWatch(pool, {
      schema,
      table: 'elsewhere',
      cacheSchema: schema,
      tablePrefix: 'other_',
    });
    // Watched, and then inherited from: its child's rows change unseen.
    await pool.query(`CREATE TABLE ${q(schema)}.parent (id int PRIMARY KEY)`);
    await installTableWatch(pool, { schema, table: 'parent', cacheSchema: schema });
    await pool.query(`CREATE TABLE ${q(schema)}.kid () INHERITS (${q(schema)}.parent)`);
    const errors: Error[] = [];
    const rule = track(
      invalidateOnTableChange(cache, {
        table: ['users', 'no_such_table', 'unwatched', 'elsewhere', 'restored', 'parent'],
        schema,
        keys: (row) => [`user:${row.id}`],
      }),
    );
    rule.on('error', (error) => errors.push(error));
    await rule.ready;
    expect(await eventually(() => errors.length === 5)).toBe(true);
    expect(errors.every((error) => error instanceof InvalidOptionError)).toBe(true);
    const messages = errors.map((error) => error.message).sort();
    expect(messages[0]).toContain(`"${schema}"."elsewhere" sends no events to "${channel}"`);
    expect(messages[0]).toContain(`its watch notifies "${other.channel}"`);
    expect(messages[1]).toContain(`"${schema}"."no_such_table" does not exist`);
    expect(messages[2]).toContain(`"${schema}"."parent" has tables that inherit from it ("kid")`);
    expect(messages[3]).toContain(`"${schema}"."restored" is watched, but not ENABLE ALWAYS`);
    expect(messages[4]).toContain(`"${schema}"."unwatched" sends no events to "${channel}"`);
    expect(messages[4]).toContain('it is not watched');
    // Its keys are user:<id>: left running, it would evict the next tests' entries too.
    await rule.close();
  });

  it('a watch one of whose two triggers is disabled or dropped is reported, and the rule is not trusted', async () => {
    for (const table of ['rows_off', 'truncate_gone']) {
      await pool.query(`CREATE TABLE ${q(schema)}.${table} (id int PRIMARY KEY)`);
      await installTableWatch(pool, { schema, table, cacheSchema: schema });
    }
    await pool.query(`ALTER TABLE ${q(schema)}.rows_off DISABLE TRIGGER pgcache_watch`);
    await pool.query(`DROP TRIGGER pgcache_watch_truncate ON ${q(schema)}.truncate_gone`);
    const errors: Error[] = [];
    const rule = track(
      invalidateOnTableChange(cache, {
        table: ['rows_off', 'truncate_gone'],
        schema,
        keys: (row) => [`user:${row.id}`],
      }),
    );
    rule.on('error', (error) => errors.push(error));
    await rule.ready;
    expect(await eventually(() => errors.length === 2)).toBe(true);
    const messages = errors.map((error) => error.message).sort();
    expect(messages[0]).toContain(`"${schema}"."rows_off" sends no events to "${channel}"`);
    expect(messages[1]).toContain(`"${schema}"."truncate_gone" sends no events to "${channel}"`);
    for (const message of messages)
      expect(message).toContain('its watch on that channel is disabled or incomplete');
    expect(rule.trusted).toBe(false);
    await rule.close();
  });

  it('without an error handler, as a process warning; for cached(), to its onError', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const rule = track(invalidateOnTableChange(cache, { table: 'missing_for_rule', schema }));
      await rule.ready;
      const warned = () => warnings.find((warning) => warning.message.includes('missing_for_rule'));
      expect(await eventually(() => warned() !== undefined)).toBe(true);
      expect(warned()?.name).toBe('InvalidOptionError');
      await rule.close();
    } finally {
      process.off('warning', onWarning);
    }
    const heard: Error[] = [];
    const fn = cached(async (id: number) => id, {
      cache,
      name: 'warned',
      invalidateOn: { table: 'missing_for_cached', schema },
      onError: (error) => heard.push(error),
    });
    await fn.ready;
    expect(await eventually(() => heard.some((error) => error.message.includes('missing_for_cached')))).toBe(
      true,
    );
    await fn.close();
  });
});

describe('rules', () => {
  it('a where() that throws counts as a match: everything the rule covers goes, and it is reported', async () => {
    await pool.query(`INSERT INTO ${users} VALUES ('2', 'a') ON CONFLICT (id) DO UPDATE SET name = 'a'`);
    await cache.set('user:2', 'a');
    const errors: unknown[] = [];
    const rule = track(
      invalidateOnTableChange(cache, {
        table: 'users',
        // A DELETE has no `new`: this throws.
        where: (event) => (event.new as { id: string }).id !== '',
        keys: (row) => [`user:${row.id}`],
      }),
    );
    rule.on('error', (error) => errors.push(error));
    await rule.ready;
    await pool.query(`DELETE FROM ${users} WHERE id = '2'`);
    expect(await eventually(async () => (await cache.get('user:2')) === undefined)).toBe(true);
    expect(await eventually(() => errors.length > 0)).toBe(true);
  });

  it('a where() or keys() that answers with a promise counts as failed: everything goes, nothing is unhandled', async () => {
    for (const [id, rejecting] of [
      ['4', { where: (async () => Promise.reject(new Error('where later'))) as never }],
      ['5', { keys: (async () => Promise.reject(new Error('keys later'))) as never }],
    ] as const) {
      await pool.query(`INSERT INTO ${users} VALUES ($1, 'a') ON CONFLICT (id) DO UPDATE SET name = 'a'`, [
        id,
      ]);
      await cache.set(`user:${id}`, 'a');
      await cache.set('bystander', 'b');
      const errors: unknown[] = [];
      const rule = track(
        invalidateOnTableChange(cache, { table: 'users', keys: (row) => [`user:${row.id}`], ...rejecting }),
      );
      rule.on('error', (error) => errors.push(error));
      await rule.ready;
      await pool.query(`UPDATE ${users} SET name = 'b' WHERE id = $1`, [id]);
      // What the change stood for is unknown: the rule flushes, the bystander included.
      expect(await eventually(async () => (await cache.get('bystander')) === undefined)).toBe(true);
      expect(await cache.get(`user:${id}`)).toBeUndefined();
      // The insert above may reach the rule too, if its event was still on its way as the rule joined the
      // table's listener: one error per event.
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error).toMatchObject({ message: expect.stringContaining('must answer at once') });
      }
      await rule.close();
    }
  });

  it('two rules on one table, one of them windowed, each evict their own keys', async () => {
    await pool.query(`INSERT INTO ${users} VALUES ('3', 'old') ON CONFLICT (id) DO UPDATE SET name = 'old'`);
    const load = async (id: string) =>
      id === 'count'
        ? (await pool.query(`SELECT count(*)::int AS n FROM ${users}`)).rows[0].n
        : (await pool.query(`SELECT name FROM ${users} WHERE id = $1`, [id])).rows[0]?.name;
    const fn = track(
      cached(load, {
        cache,
        name: 'two-rules',
        key: (id) => id,
        invalidateOn: [
          { table: 'users', keys: (row) => [String(row.id)], strategy: windowed({ maxWait: 100 }) },
          { table: 'users', keys: () => ['count'] },
        ],
      }),
    );
    await fn.ready;
    expect(await fn('3')).toBe('old');
    await pool.query(`UPDATE ${users} SET name = 'new' WHERE id = '3'`);
    expect(await eventually(async () => (await fn('3')) === 'new')).toBe(true);
  });

  it('a table watched without key columns counts as changed as a whole', async () => {
    await pool.query(`INSERT INTO ${q(schema)}.nokey VALUES (1, 'old')`);
    await cache.set('nk:1', 'old');
    const rule = track(invalidateOnTableChange(cache, { table: 'nokey', keys: (row) => [`nk:${row.id}`] }));
    await rule.ready;
    await pool.query(`UPDATE ${q(schema)}.nokey SET name = 'new' WHERE id = 1`);
    expect(await eventually(async () => (await cache.get('nk:1')) === undefined)).toBe(true);
  });
});

/** A cache in a schema of its own, holding `item:4` for row 4 of its items table, and a rule keyed by id. */
async function itemsRule(own: string) {
  await PostgresCache.initDb({ connectionString: databaseUrl(), schema: own });
  await pool.query(`CREATE TABLE ${q(own)}.items (id int PRIMARY KEY, name text)`);
  await pool.query(`INSERT INTO ${q(own)}.items VALUES (4, 'a')`);
  await installTableWatch(pool, { schema: own, table: 'items', cacheSchema: own });
  const target = new PostgresCache({ connectionString: databaseUrl(), schema: own, sweepInterval: 0 });
  target.on('error', () => undefined);
  await target.set('item:4', 'a');
  const rule = track(
    invalidateOnTableChange(target, { table: 'items', schema: own, keys: (row) => [`item:${row.id}`] }),
  );
  return { target, rule };
}

describe('an eviction that fails', () => {
  it('is retried once the cache table is back; meanwhile the rule is not trusted', async () => {
    const own = `${schema}_failing`;
    const { target, rule } = await itemsRule(own);
    rule.on('error', () => undefined);
    try {
      await rule.ready;
      expect(await eventually(() => rule.trusted)).toBe(true);
      await pool.query(`ALTER TABLE ${q(own)}.pgcache_entries RENAME TO entries_away`);
      await pool.query(`UPDATE ${q(own)}.items SET name = 'b' WHERE id = 4`);
      expect(await eventually(() => rule.stats.failures > 0)).toBe(true);
      // cached() reads and stores nothing through a rule whose evictions are behind.
      expect(rule.trusted).toBe(false);
      await pool.query(`ALTER TABLE ${q(own)}.entries_away RENAME TO pgcache_entries`);
      expect(await eventually(async () => (await target.get('item:4')) === undefined)).toBe(true);
      expect(await eventually(() => rule.trusted)).toBe(true);
    } finally {
      await target.disconnect();
      await dropSchema(own);
    }
  });
});

describe('an error handler that throws', () => {
  it('neither stops the evictions nor surfaces as an unhandled rejection', async () => {
    const own = `${schema}_errors`;
    const { target, rule } = await itemsRule(own);
    try {
      rule.on('error', () => {
        throw new Error('an error handler that throws');
      });
      await rule.ready;
      // The eviction fails while the cache table is away, and is retried once it is back.
      await pool.query(`ALTER TABLE ${q(own)}.pgcache_entries RENAME TO entries_away`);
      await pool.query(`UPDATE ${q(own)}.items SET name = 'b' WHERE id = 4`);
      expect(await eventually(() => rule.stats.failures > 0)).toBe(true);
      await pool.query(`ALTER TABLE ${q(own)}.entries_away RENAME TO pgcache_entries`);
      expect(await eventually(async () => (await target.get('item:4')) === undefined)).toBe(true);
    } finally {
      await target.disconnect();
      await dropSchema(own);
    }
  });
});

describe('a watch uninstalled while a rule runs', () => {
  it('is noticed at the next check: reported, flushed, not trusted until it is installed again', async () => {
    const table = `${q(schema)}.uninstalled_later`;
    await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text)`);
    await pool.query(`INSERT INTO ${table} VALUES (1, 'one')`);
    const where = { schema, table: 'uninstalled_later', cacheSchema: schema };
    await installTableWatch(pool, where);
    const checking = new PostgresCache({
      connectionString: databaseUrl(),
      schema,
      sweepInterval: 0,
      triggerCheckInterval: 200,
    });
    checking.on('error', () => undefined);
    const heard: Error[] = [];
    let runs = 0;
    const name = track(
      cached(
        async (id: number) => {
          runs++;
          const { rows } = await pool.query(`SELECT name FROM ${table} WHERE id = $1`, [id]);
          return rows[0]?.name as string;
        },
        {
          cache: checking,
          name: 'uninstalled_later',
          key: (id) => String(id),
          invalidateOn: { table: 'uninstalled_later', schema, keys: (row) => [String(row.id)] },
          onError: (error) => heard.push(error),
        },
      ),
    );
    try {
      await name.ready;
      expect(await name(1)).toBe('one');
      expect(await name(1)).toBe('one');
      expect(runs).toBe(1);
      await uninstallTableWatch(pool, where);
      expect(await eventually(() => name.invalidation?.trusted === false, 5000)).toBe(true);
      expect(heard.some((error) => /uninstalled_later.*not watched/.test(error.message))).toBe(true);
      // Unheard now: the call goes around the cache.
      await pool.query(`UPDATE ${table} SET name = 'two' WHERE id = 1`);
      expect(await name(1)).toBe('two');
      const flushes = name.invalidation?.stats.flushes ?? 0;
      await installTableWatch(pool, where);
      expect(await eventually(() => name.invalidation?.trusted === true, 5000)).toBe(true);
      // What other code stored meanwhile goes too.
      expect(await eventually(() => (name.invalidation?.stats.flushes ?? 0) > flushes, 5000)).toBe(true);
      expect(await name(1)).toBe('two');
      await pool.query(`UPDATE ${table} SET name = 'three' WHERE id = 1`);
      expect(await eventually(async () => (await name(1)) === 'three', 5000)).toBe(true);
    } finally {
      await name.close();
      await checking.disconnect();
    }
  });
});

describe('a table a rule names that does not exist at the start', () => {
  it('is not trusted until it exists and is watched; with triggerCheckInterval 0, it is reported only', async () => {
    const caches = [0, 200].map((triggerCheckInterval) => {
      const created = new PostgresCache({
        connectionString: databaseUrl(),
        schema,
        sweepInterval: 0,
        triggerCheckInterval,
      });
      created.on('error', () => undefined);
      return created;
    });
    const heard: Error[][] = [[], []];
    const functions = caches.map((checking, i) =>
      track(
        cached(async (id: number) => id, {
          cache: checking,
          name: `appears_later_${i}`,
          invalidateOn: { table: 'appears_later', schema },
          onError: (error) => heard[i]?.push(error),
        }),
      ),
    );
    try {
      await Promise.all(functions.map((fn) => fn.ready));
      const [once, rechecking] = functions;
      // Checked before ready resolves: not trusted from the first call on.
      expect(rechecking?.invalidation?.trusted).toBe(false);
      expect(once?.invalidation?.trusted).toBe(true);
      expect(
        heard.every((errors) => errors.some((error) => /appears_later.*does not exist/.test(error.message))),
      ).toBe(true);
      await pool.query(`CREATE TABLE ${q(schema)}.appears_later (id int PRIMARY KEY)`);
      await installTableWatch(pool, { schema, table: 'appears_later', cacheSchema: schema });
      expect(await eventually(() => rechecking?.invalidation?.trusted === true, 5000)).toBe(true);
    } finally {
      await Promise.all(functions.map((fn) => fn.close()));
      await Promise.all(caches.map((checking) => checking.disconnect()));
    }
  });
});

describe('a watch trigger switched to ENABLE REPLICA', () => {
  it('does not count as watching, and installing again puts it back', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.replica (id int PRIMARY KEY)`);
    await installTableWatch(pool, { schema, table: 'replica', cacheSchema: schema });
    const { rows } = await pool.query<{ tgname: string }>(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`,
      [`${q(schema)}.replica`],
    );
    for (const { tgname } of rows) {
      await pool.query(`ALTER TABLE ${q(schema)}.replica ENABLE REPLICA TRIGGER ${q(tgname)}`);
    }
    const operations = async () =>
      (await listTableWatches(pool, { cacheSchema: schema })).find((watch) => watch.table === 'replica')
        ?.operations ?? [];
    expect(await operations()).toEqual([]);
    const again = await installTableWatch(pool, { schema, table: 'replica', cacheSchema: schema });
    expect(again.upToDate).toBe(false);
    expect(again.applied).toBe(true);
    expect((await operations()).length).toBe(4);
  });
});

describe('a rule refused at construction', () => {
  it('leaves nothing open: the LISTEN connection goes with the cache', async () => {
    // A connection string of its own, so that its LISTEN connection is shared with nobody else's cache.
    const url = new URL(databaseUrl());
    url.searchParams.set('application_name', 'refused-rule');
    const own = new PostgresCache({ connectionString: url.toString(), schema, sweepInterval: 0 });
    await own.init();
    const pid = own.stats.listener.backendPid;
    const bad = { table: 'users', operations: ['upsert' as never] };
    expect(() =>
      cached(async (id: number) => id, { cache: own, name: 'refused', invalidateOn: bad }),
    ).toThrow(InvalidOptionError);
    expect(() => invalidateOnTableChange(own, bad)).toThrow(InvalidOptionError);
    await own.disconnect();
    const listening = async () =>
      (
        await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [
          pid,
        ])
      ).rows[0]?.n;
    expect(await eventually(async () => (await listening()) === 0)).toBe(true);
  });
});

describe('close()', () => {
  it('carries out the evictions it has heard of before it returns', async () => {
    await pool.query(`INSERT INTO ${users} VALUES ('5', 'a') ON CONFLICT (id) DO UPDATE SET name = 'a'`);
    await cache.set('user:5', 'a');
    const rule = invalidateOnTableChange(cache, {
      table: 'users',
      keys: (row) => [`user:${row.id}`],
      strategy: windowed({ maxWait: 60_000 }),
    });
    await rule.ready;
    await pool.query(`UPDATE ${users} SET name = 'b' WHERE id = '5'`);
    expect(await eventually(() => rule.stats.events > 0)).toBe(true);
    await rule.close();
    expect(await cache.adapter.readEntry('', 'user:5')).toBeUndefined();
  });
});
