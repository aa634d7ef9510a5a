import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidIdentifierError,
  InvalidOptionError,
  installTableWatch,
  listTableWatches,
  PostgresAdapter,
  QueryError,
  tableChangeChannel,
  uninstallTableWatch,
} from '../../src/index.js';
import { runScript } from '../support/child.js';
import {
  adminPool,
  databaseUrl,
  dropSchema,
  eventually,
  outcomeWithin,
  uniqueSchema,
} from '../support/database.js';
import { listenRaw, q } from './support.js';

const schema = uniqueSchema('tw_install');
const pool = adminPool();
const at = { schema, cacheSchema: schema };
const channel = tableChangeChannel({ cacheSchema: schema });

const triggersOn = async (table: string, inSchema = schema) =>
  (
    await pool.query<{ tgname: string }>(
      `SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND NOT t.tgisinternal ORDER BY t.tgname`,
      [inSchema, table],
    )
  ).rows.map((row) => row.tgname);

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
});

afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('installTableWatch', () => {
  it('may create the cache schema at the same time as caches do', async () => {
    for (let round = 0; round < 4; round++) {
      const cacheSchema = `${schema}_new${round}`;
      await pool.query(`CREATE TABLE ${q(schema)}.${q(`racing${round}`)} (id int PRIMARY KEY)`);
      try {
        const outcomes = await Promise.allSettled([
          ...Array.from({ length: 3 }, (_, i) =>
            PostgresAdapter.initDb({
              connectionString: databaseUrl(),
              schema: cacheSchema,
              tablePrefix: `p${i}_`,
              // They queue on the schema lock, and that wait counts against the statement timeout.
              statementTimeout: 30_000,
            }),
          ),
          installTableWatch(pool, { schema, cacheSchema, table: `racing${round}` }),
        ]);
        expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
      } finally {
        await dropSchema(cacheSchema);
      }
    }
  });

  it('with dryRun prints the whole change and changes nothing', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.dry (id int PRIMARY KEY, name text)`);
    const plan = await installTableWatch(pool, { ...at, table: 'dry', dryRun: true });
    expect(plan).toMatchObject({
      table: 'dry',
      keyColumns: ['id'],
      channel,
      applied: false,
      upToDate: false,
    });
    expect(plan.sql).toMatch(/^BEGIN;\nSELECT pg_advisory_xact_lock\(/);
    expect(plan.sql).toContain(`CREATE OR REPLACE FUNCTION ${q(schema)}."pgcache_table_change"()`);
    expect(plan.sql).toContain('AFTER INSERT OR UPDATE OR DELETE');
    expect(plan.sql).toContain('FOR EACH ROW');
    expect(plan.sql).toContain('AFTER TRUNCATE');
    expect(plan.sql).toContain(`(E'${channel}', E'id')`);
    expect(plan.sql).toMatch(/COMMIT;\n$/);
    expect(await triggersOn('dry')).toEqual([]);
    const fn = await pool.query('SELECT to_regprocedure($1) AS f', [`${q(schema)}."pgcache_table_change"()`]);
    expect(fn.rows[0].f).toBeNull();
  });

  it('installs both triggers, lists them, and a second install is up to date and applies nothing', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.users (id int PRIMARY KEY, name text)`);
    const first = await installTableWatch(pool, { ...at, table: 'users' });
    expect(first).toMatchObject({ applied: true, upToDate: false, keyColumns: ['id'] });
    expect(await triggersOn('users')).toEqual(['pgcache_watch', 'pgcache_watch_truncate']);
    const again = await installTableWatch(pool, { ...at, table: 'users' });
    expect(again).toMatchObject({ applied: false, upToDate: true });
    const watches = await listTableWatches(pool, { cacheSchema: schema });
    expect(watches).toContainEqual({
      schema,
      table: 'users',
      channel,
      keyColumns: ['id'],
      operations: ['insert', 'update', 'delete', 'truncate'],
    });
  });

  it('an outdated shared function (an older library) makes the next install replace it', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.upgraded (id int PRIMARY KEY)`);
    await installTableWatch(pool, { ...at, table: 'upgraded' });
    const fn = `${q(schema)}."pgcache_table_change"`;
    const body = async () =>
      (await pool.query('SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)', [`${fn}()`])).rows[0]
        ?.prosrc as string;
    const current = await body();
    await pool.query(
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`,
    );
    expect(await installTableWatch(pool, { ...at, table: 'upgraded' })).toMatchObject({
      upToDate: false,
      applied: true,
    });
    expect(await body()).toBe(current);
    expect((await installTableWatch(pool, { ...at, table: 'upgraded' })).upToDate).toBe(true);
  });

  it('discovers a composite primary key in its own column order; keyColumns overrides it', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.memberships (a int, b int, email text, PRIMARY KEY (b, a))`);
    expect((await installTableWatch(pool, { ...at, table: 'memberships', dryRun: true })).keyColumns).toEqual(
      ['b', 'a'],
    );
    const plan = await installTableWatch(pool, { ...at, table: 'memberships', keyColumns: ['email'] });
    expect(plan.keyColumns).toEqual(['email']);
    const events = await listenRaw(channel);
    await pool.query(`INSERT INTO ${q(schema)}.memberships VALUES (1, 2, 'x@example.com')`);
    expect(await events.received(1)).toBe(true);
    expect(events.events()[0]).toMatchObject({ operation: 'insert', new: { email: 'x@example.com' } });
    await events.close();
  });

  it('refuses what it cannot watch with a typed error that names the fix', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.no_pk (a int, b text)`);
    await pool.query(`CREATE VIEW ${q(schema)}.a_view AS SELECT 1 AS id`);
    await pool.query(`CREATE TABLE ${q(schema)}.parted (id int PRIMARY KEY) PARTITION BY RANGE (id)`);
    await pool.query(`CREATE TABLE ${q(schema)}.parent (id int PRIMARY KEY)`);
    await pool.query(`CREATE TABLE ${q(schema)}.child () INHERITS (${q(schema)}.parent)`);
    const attempt = (options: Partial<Parameters<typeof installTableWatch>[1]>) =>
      installTableWatch(pool, { ...at, table: 'no_pk', ...options });
    await expect(attempt({})).rejects.toThrow(/no primary key: pass keyColumns/);
    await expect(attempt({})).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(attempt({ table: 'missing' })).rejects.toThrow(/does not exist/);
    await expect(attempt({ table: 'a_view' })).rejects.toThrow(/not a table/);
    await expect(attempt({ table: 'parted' })).rejects.toThrow(/partitioned/);
    // An UPDATE through the parent of a row stored in the child fires the child's triggers only.
    await expect(attempt({ table: 'parent' })).rejects.toThrow(/inherit from it \(.*child\)/);
    expect(await attempt({ table: 'child', keyColumns: ['id'] })).toMatchObject({ applied: true });
    await uninstallTableWatch(pool, { ...at, table: 'child' });
    await expect(attempt({ keyColumns: ['nope'] })).rejects.toThrow(/has no column "nope"/);
    await expect(attempt({ keyColumns: ['a', 'a'] })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(attempt({ channel: 'bad channel' })).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(attempt({ cacheSchema: 'x"y' })).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(attempt({ tablePrefix: '1x' })).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(attempt({ table: '' })).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(attempt({ table: 'x'.repeat(64) })).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(attempt({ table: 'a\u0000b' })).rejects.toBeInstanceOf(InvalidIdentifierError);
    // keyColumns: [] watches a table without a primary key; its events carry no keys.
    expect(await attempt({ keyColumns: [] })).toMatchObject({ applied: true, keyColumns: [] });
    const events = await listenRaw(channel);
    await pool.query(`INSERT INTO ${q(schema)}.no_pk VALUES (1, 'x')`);
    expect(await events.received(1)).toBe(true);
    expect(events.events()[0]).toMatchObject({ table: 'no_pk', operation: 'insert', new: {} });
    await events.close();
  });

  it('quotes hostile schema, table and column names: they are names, never SQL', async () => {
    // Each one would drop the canary if it reached SQL unquoted; each fits in 63 bytes.
    const hostileSchema = `h"; DROP SCHEMA x; --${schema.slice(-8)}`;
    const table = `x'); DROP TABLE ${schema}.canary;--`;
    const column = `id" int); DROP TABLE ${schema}.canary; --\\`;
    await pool.query(`CREATE TABLE ${q(schema)}.canary (id int)`);
    await pool.query(`CREATE SCHEMA ${q(hostileSchema)}`);
    try {
      await pool.query(`CREATE TABLE ${q(hostileSchema)}.${q(table)} (${q(column)} int PRIMARY KEY)`);
      const plan = await installTableWatch(pool, { schema: hostileSchema, table, cacheSchema: schema });
      expect(plan).toMatchObject({ applied: true, keyColumns: [column] });
      const events = await listenRaw(channel);
      await pool.query(`INSERT INTO ${q(hostileSchema)}.${q(table)} VALUES (7)`);
      await pool.query(`DELETE FROM ${q(hostileSchema)}.${q(table)}`);
      expect(await events.received(2)).toBe(true);
      expect(events.events()).toEqual([
        {
          schema: hostileSchema,
          table,
          operation: 'insert',
          new: { [column]: 7 },
          old: undefined,
          overflow: false,
        },
        {
          schema: hostileSchema,
          table,
          operation: 'delete',
          old: { [column]: 7 },
          new: undefined,
          overflow: false,
        },
      ]);
      await events.close();
      const watched = await listTableWatches(pool, { cacheSchema: schema });
      expect(watched.find((watch) => watch.schema === hostileSchema)).toMatchObject({
        table,
        keyColumns: [column],
      });
      expect(
        (await uninstallTableWatch(pool, { schema: hostileSchema, table, cacheSchema: schema })).applied,
      ).toBe(true);
      expect(await triggersOn('canary')).toEqual([]);
      expect(
        (await pool.query(`SELECT to_regclass('${schema}.canary') IS NOT NULL AS kept`)).rows[0].kept,
      ).toBe(true);
    } finally {
      await pool.query(`DROP SCHEMA ${q(hostileSchema)} CASCADE`);
    }
  });
});

describe('a table another transaction is writing to', () => {
  it('fails install and uninstall with a QueryError after lockTimeout, and writes to it are not held up', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.busy (id int PRIMARY KEY, n int NOT NULL)`);
    await pool.query(`INSERT INTO ${q(schema)}.busy VALUES (1, 0), (2, 0)`);
    await installTableWatch(pool, { ...at, table: 'busy' });
    const writer = new pg.Client({ connectionString: databaseUrl() });
    await writer.connect();
    try {
      // An open transaction that wrote to the table: CREATE or DROP TRIGGER must wait for it.
      await writer.query('BEGIN');
      await writer.query(`UPDATE ${q(schema)}.busy SET n = n + 1 WHERE id = 1`);
      const install = installTableWatch(pool, {
        ...at,
        table: 'busy',
        keyColumns: ['id', 'n'],
        lockTimeout: 300,
      });
      const installed = await outcomeWithin(install, 10_000);
      expect(installed).toBeInstanceOf(QueryError);
      expect((installed as Error).message).toContain('lock timeout');
      const uninstalled = await outcomeWithin(
        uninstallTableWatch(pool, { ...at, table: 'busy', lockTimeout: 300 }),
        10_000,
      );
      expect(uninstalled).toBeInstanceOf(QueryError);
      // Nothing waits on the table now: another session's write goes through.
      const write = pool.query(`UPDATE ${q(schema)}.busy SET n = n + 1 WHERE id = 2`);
      expect(await outcomeWithin(write, 10_000)).toBe('resolved');
      expect((await write).rowCount).toBe(1);
      await writer.query('ROLLBACK');
      // Neither change was made: the watch is as it was.
      const [watch] = (await listTableWatches(pool, { cacheSchema: schema })).filter(
        (w) => w.table === 'busy',
      );
      expect(watch?.keyColumns).toEqual(['id']);
    } finally {
      await writer.end();
    }
  });

  it('refuses a lockTimeout PostgreSQL would not take: not a whole number of ms from 1 to 2^31 - 1', async () => {
    for (const lockTimeout of [0, 1.5, 2 ** 31]) {
      await expect(installTableWatch(pool, { ...at, table: 'busy', lockTimeout })).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
    }
  });
});

describe('the events the triggers send', () => {
  it('insert, update (old and new keys), delete and truncate, through a connection the library does not own', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.accounts (id int PRIMARY KEY, name text)`);
    await installTableWatch(pool, { ...at, table: 'accounts' });
    const events = await listenRaw(channel);
    await pool.query(`INSERT INTO ${q(schema)}.accounts VALUES (1, 'a')`);
    await pool.query(`UPDATE ${q(schema)}.accounts SET name = 'b' WHERE id = 1`);
    await pool.query(`UPDATE ${q(schema)}.accounts SET id = 2 WHERE id = 1`);
    await pool.query(`DELETE FROM ${q(schema)}.accounts WHERE id = 2`);
    await pool.query(`TRUNCATE ${q(schema)}.accounts`);
    expect(await events.received(5)).toBe(true);
    const base = { schema, table: 'accounts', overflow: false };
    expect(events.events()).toEqual([
      { ...base, operation: 'insert', old: undefined, new: { id: 1 } },
      { ...base, operation: 'update', old: { id: 1 }, new: { id: 1 } },
      { ...base, operation: 'update', old: { id: 1 }, new: { id: 2 } },
      { ...base, operation: 'delete', old: { id: 2 }, new: undefined },
      { ...base, operation: 'truncate', overflow: false },
    ]);
    await events.close();
  });

  it('fire in replica-mode sessions too; an install over triggers enabled only for ordinary sessions re-arms them', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.replicated (id int PRIMARY KEY)`);
    await installTableWatch(pool, { ...at, table: 'replicated' });
    const states = async () =>
      (
        await pool.query<{ tgenabled: string }>(
          'SELECT tgenabled FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname',
          [`${q(schema)}.replicated`],
        )
      ).rows.map((row) => row.tgenabled);
    expect(await states()).toEqual(['A', 'A']);
    const events = await listenRaw(channel);
    const replicaSession = await pool.connect();
    try {
      await replicaSession.query('SET session_replication_role = replica');
      await replicaSession.query(`INSERT INTO ${q(schema)}.replicated VALUES (1)`);
      await replicaSession.query(`TRUNCATE ${q(schema)}.replicated`);
    } finally {
      replicaSession.release(true);
    }
    expect(await events.received(2)).toBe(true);
    expect(events.events().map((event) => event?.operation)).toEqual(['insert', 'truncate']);
    await events.close();

    // As pg_restore --disable-triggers leaves them.
    await pool.query(`ALTER TABLE ${q(schema)}.replicated DISABLE TRIGGER ALL`);
    await pool.query(`ALTER TABLE ${q(schema)}.replicated ENABLE TRIGGER ALL`);
    expect(await states()).toEqual(['O', 'O']);
    expect(await installTableWatch(pool, { ...at, table: 'replicated' })).toMatchObject({
      upToDate: false,
      applied: true,
    });
    expect(await states()).toEqual(['A', 'A']);
  });

  it('keys too big for NOTIFY become one overflow event per row; big and fractional numbers stay exact', async () => {
    await pool.query(
      `CREATE TABLE ${q(schema)}.docs (id bigint PRIMARY KEY, body text, ratio numeric, small int)`,
    );
    await installTableWatch(pool, { ...at, table: 'docs', keyColumns: ['id', 'body', 'ratio', 'small'] });
    const events = await listenRaw(channel);
    await pool.query(`INSERT INTO ${q(schema)}.docs VALUES (12345678901234567, 'short', 1.10, -42)`);
    // Past 8000 bytes once JSON-escaped: each control character becomes six bytes.
    await pool.query(`INSERT INTO ${q(schema)}.docs VALUES (1, repeat(chr(1), 1400), 0, 0)`);
    expect(await events.received(2)).toBe(true);
    expect(events.payloads.every((payload) => Buffer.byteLength(payload) < 8000)).toBe(true);
    expect(events.events()).toEqual([
      {
        schema,
        table: 'docs',
        operation: 'insert',
        old: undefined,
        new: { id: '12345678901234567', body: 'short', ratio: '1.10', small: -42 },
        overflow: false,
      },
      { schema, table: 'docs', operation: 'insert', overflow: true },
    ]);
    await events.close();
  });

  it('a key column renamed or dropped after the install: events say the whole table changed, not key null', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.renamed (id int PRIMARY KEY, name text)`);
    await installTableWatch(pool, { ...at, table: 'renamed' });
    await pool.query(`INSERT INTO ${q(schema)}.renamed VALUES (1, 'a')`);
    await pool.query(`ALTER TABLE ${q(schema)}.renamed RENAME COLUMN id TO user_id`);
    const events = await listenRaw(channel);
    await pool.query(`UPDATE ${q(schema)}.renamed SET name = 'b' WHERE user_id = 1`);
    await pool.query(`INSERT INTO ${q(schema)}.renamed VALUES (2, 'c')`);
    expect(await events.received(2)).toBe(true);
    // A null key would evict the entry of "null" and leave row 1's stale.
    expect(events.events()).toEqual([
      { schema, table: 'renamed', operation: 'update', overflow: true },
      { schema, table: 'renamed', operation: 'insert', overflow: true },
    ]);
    await events.close();
  });

  it('the channel is the trigger argument: re-installing with another channel re-points the table', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.moved (id int PRIMARY KEY)`);
    await installTableWatch(pool, { ...at, table: 'moved', channel: 'tw_first_channel' });
    const plan = await installTableWatch(pool, { ...at, table: 'moved', channel: 'tw_second_channel' });
    expect(plan).toMatchObject({ applied: true, upToDate: false });
    // One connection on both channels: a notification sent to either arrives on it, in commit order.
    const client = new pg.Client({ connectionString: databaseUrl() });
    const channels: string[] = [];
    client.on('notification', (message) => channels.push(message.channel));
    await client.connect();
    await client.query('LISTEN tw_first_channel; LISTEN tw_second_channel');
    await pool.query(`INSERT INTO ${q(schema)}.moved VALUES (1)`);
    await pool.query(`INSERT INTO ${q(schema)}.moved VALUES (2)`);
    expect(await eventually(() => channels.length >= 2, 15_000)).toBe(true);
    expect(channels).toEqual(['tw_second_channel', 'tw_second_channel']);
    await client.end();
  });
});

describe('uninstallTableWatch and other caches', () => {
  it('dry run changes nothing; apply removes both triggers; a second uninstall has nothing to do', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.gone (id int PRIMARY KEY)`);
    await installTableWatch(pool, { ...at, table: 'gone' });
    const dry = await uninstallTableWatch(pool, { ...at, table: 'gone', dryRun: true });
    expect(dry).toMatchObject({ applied: false, wasWatched: true });
    expect(dry.sql).toContain('DROP TRIGGER IF EXISTS "pgcache_watch" ON');
    expect(await triggersOn('gone')).toHaveLength(2);
    expect(await uninstallTableWatch(pool, { ...at, table: 'gone' })).toMatchObject({ applied: true });
    expect(await triggersOn('gone')).toEqual([]);
    expect(await uninstallTableWatch(pool, { ...at, table: 'gone' })).toMatchObject({
      applied: false,
      wasWatched: false,
    });
    expect((await listTableWatches(pool, { cacheSchema: schema })).map((watch) => watch.table)).not.toContain(
      'gone',
    );
  });

  it("refuses to overwrite or drop another cache's trigger of the same name", async () => {
    const otherCache = uniqueSchema('tw_other_cache');
    await pool.query(`CREATE SCHEMA ${q(otherCache)}`);
    try {
      await pool.query(`CREATE TABLE ${q(schema)}.shared (id int PRIMARY KEY)`);
      await installTableWatch(pool, { ...at, table: 'shared' });
      const other = { schema, table: 'shared', cacheSchema: otherCache };
      await expect(installTableWatch(pool, other)).rejects.toThrow(
        /another cache .* use a different tablePrefix/,
      );
      await expect(uninstallTableWatch(pool, other)).rejects.toBeInstanceOf(InvalidOptionError);
      // With a prefix of its own, the other cache watches the same table alongside.
      expect(await installTableWatch(pool, { ...other, tablePrefix: 'other_' })).toMatchObject({
        applied: true,
      });
      expect(await triggersOn('shared')).toHaveLength(4);
    } finally {
      await dropSchema(otherCache);
    }
  });

  it('a role watching its own table uses the shared function another role created', async () => {
    const cacheSchema = `${schema}_roles`;
    const suffix = Math.random().toString(36).slice(2, 8);
    const [first, second] = [`tw_owner_a_${suffix}`, `tw_owner_b_${suffix}`];
    const asRole = (role: string) => {
      const url = new URL(databaseUrl());
      url.username = role;
      return new pg.Pool({ connectionString: url.toString(), max: 1 });
    };
    try {
      for (const [role, table] of [
        [first, 'owned_a'],
        [second, 'owned_b'],
      ]) {
        await pool.query(`CREATE ROLE ${role} LOGIN`);
        await pool.query(`GRANT USAGE ON SCHEMA ${q(schema)} TO ${role}`);
        await pool.query(`CREATE TABLE ${q(schema)}.${table} (id int PRIMARY KEY)`);
        await pool.query(`ALTER TABLE ${q(schema)}.${table} OWNER TO ${role}`);
      }
      await pool.query(`CREATE SCHEMA ${q(cacheSchema)}`);
      await pool.query(`GRANT CREATE, USAGE ON SCHEMA ${q(cacheSchema)} TO ${first}, ${second}`);
      for (const [role, table] of [
        [first, 'owned_a'],
        [second, 'owned_b'],
      ]) {
        const own = asRole(role as string);
        try {
          const plan = await installTableWatch(own, { schema, table: table as string, cacheSchema });
          expect(plan.applied).toBe(true);
        } finally {
          await own.end();
        }
      }
      const watched = (await listTableWatches(pool, { cacheSchema })).map((watch) => watch.table);
      expect(watched.sort()).toEqual(['owned_a', 'owned_b']);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${q(schema)}.owned_a, ${q(schema)}.owned_b`);
      await dropSchema(cacheSchema);
      for (const role of [first, second]) {
        await pool.query(`DROP OWNED BY ${role}`).catch(() => undefined);
        await pool.query(`DROP ROLE IF EXISTS ${role}`);
      }
    }
  });

  it('many processes installing at once all succeed (the shared function is created under a lock)', async () => {
    const tables = Array.from({ length: 6 }, (_, index) => `race_${index}`);
    for (const table of tables) await pool.query(`CREATE TABLE ${q(schema)}.${table} (id int PRIMARY KEY)`);
    const results = await Promise.all(
      tables.map((table) => runScript('watch-install.ts', [schema, table], {}, 60_000)),
    );
    expect(results.map((result) => result.stdout.trim())).toEqual(tables.map(() => 'installed'));
    const watched = (await listTableWatches(pool, { cacheSchema: schema })).map((watch) => watch.table);
    expect(watched).toEqual(expect.arrayContaining(tables));
  }, 90_000);
});
