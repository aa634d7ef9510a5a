import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresAdapter, PostgresCache, SchemaError } from '../../src/index.js';
import { runScript } from '../support/child.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';
import { listenOn } from '../support/notifications.js';

const pool = adminPool();
const schemas: string[] = [];
const roles: string[] = [];

function newSchema(label: string) {
  const schema = uniqueSchema(label);
  schemas.push(schema);
  return schema;
}

afterAll(async () => {
  for (const schema of schemas) await dropSchema(schema);
  for (const role of roles) {
    await pool.query(`DROP OWNED BY "${role}"`);
    await pool.query(`DROP ROLE "${role}"`);
  }
  await pool.end();
});

describe('migrations', () => {
  it('eight processes starting at once all succeed and leave one schema version', async () => {
    const schema = newSchema('concurrent');
    const results = await Promise.all(Array.from({ length: 8 }, () => runScript('init-db.ts', [schema])));
    expect(results.map((result) => result.stdout.trim())).toEqual(Array(8).fill('ok'));
    const { rows } = await pool.query(`SELECT name, value FROM "${schema}".pgcache_meta`);
    expect(rows).toEqual([{ name: 'schema_version', value: '10' }]);
  }, 60_000);

  it('caches with different table prefixes may create their new schema at once', async () => {
    for (let round = 0; round < 3; round++) {
      const schema = newSchema(`prefixes_${round}`);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) =>
          // They queue on the schema lock, and that wait counts against the statement timeout.
          PostgresAdapter.initDb({
            connectionString: databaseUrl(),
            schema,
            tablePrefix: `p${i}_`,
            statementTimeout: 30_000,
          }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    }
  });

  it('is idempotent in one process', async () => {
    const schema = newSchema('idempotent');
    await PostgresAdapter.initDb({ pool, schema });
    await PostgresAdapter.initDb({ pool, schema });
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.set('k', 'v');
    expect(await adapter.get('k')).toBe('v');
    await adapter.disconnect();
  });

  it('version 8 makes every trigger of a version-7 table fire in every session, and leaves a disabled one to the repair that tells the channel', async () => {
    const schema = newSchema('fire_always');
    const entries = `"${schema}".pgcache_entries`;
    const states = async () =>
      (
        await pool.query<{ tgname: string; tgenabled: string }>(
          'SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname',
          [entries],
        )
      ).rows.map((row) => `${row.tgname}:${row.tgenabled}`);
    const asVersion7 = async (notifyTrigger: 'ENABLE' | 'DISABLE') => {
      await pool.query(`ALTER TABLE ${entries} ENABLE TRIGGER ALL`);
      await pool.query(`ALTER TABLE ${entries} ${notifyTrigger} TRIGGER pgcache_notify_trigger`);
      await pool.query(`UPDATE "${schema}".pgcache_meta SET value = '7' WHERE name = 'schema_version'`);
    };
    const notifyChannel = `${schema}_changes`;
    await PostgresAdapter.initDb({ pool, schema, changeEvents: true, notifyChannel });
    await asVersion7('ENABLE');
    // A user without change events migrates too; it brings the change trigger along as it found it, enabled.
    await PostgresAdapter.initDb({ pool, schema });
    expect(await states()).toEqual([
      'pgcache_notify_trigger:A',
      'pgcache_truncate_trigger:A',
      'pgcache_version_trigger:A',
      'pgcache_version_update_trigger:A',
    ]);

    await asVersion7('DISABLE');
    await PostgresAdapter.initDb({ pool, schema });
    expect(await states()).toContain('pgcache_notify_trigger:D');
    const notices = await listenOn(notifyChannel);
    try {
      await PostgresAdapter.initDb({ pool, schema, changeEvents: true, notifyChannel });
      expect(await states()).toContain('pgcache_notify_trigger:A');
      await notices.drain();
      expect(notices.payloads().map((payload) => JSON.parse(payload))).toEqual([
        { op: 'repoint', to: notifyChannel, by: expect.any(String) },
      ]);
    } finally {
      await notices.end();
    }
  });

  for (const [how, revokedBefore] of [
    ['granted to the runtime role', true],
    ['left to PUBLIC, by default', false],
  ] as const) {
    it(`versions 9 and 10 let whoever may execute the existing functions execute their new ones (${how})`, async () => {
      // A migration role that creates functions without EXECUTE for PUBLIC: from the start, with the grants made
      // to the runtime role, or only since after version 8 (whose functions PUBLIC may still execute).
      const schema = newSchema('grants');
      const owner = `pgcache_owner_${randomBytes(4).toString('hex')}`;
      roles.push(owner);
      const revoke = `ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`;
      await pool.query(`CREATE ROLE "${owner}" LOGIN PASSWORD 'owner'`);
      if (revokedBefore) await pool.query(revoke);
      await pool.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${owner}"`);
      const ownerUrl = new URL(databaseUrl());
      ownerUrl.username = owner;
      ownerUrl.password = 'owner';
      const migrate = () => PostgresAdapter.initDb({ connectionString: ownerUrl.toString(), schema });
      await migrate();
      const url = await runtimeRole(schema);
      // As version 8 left it, with the grants the site made then.
      await pool.query(`DROP FUNCTION "${schema}".pgcache_delete_keys(text, text[])`);
      await pool.query(`DROP FUNCTION "${schema}".pgcache_delete_announced(text, text)`);
      await pool.query(`UPDATE "${schema}".pgcache_meta SET value = '8' WHERE name = 'schema_version'`);
      if (revokedBefore) {
        await pool.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "${schema}" TO "${url.username}"`);
      } else await pool.query(revoke);
      await migrate();
      const adapter = new PostgresAdapter({ connectionString: url.toString(), schema, sweepInterval: 0 });
      try {
        await adapter.setMany([
          { key: 'a', value: '1' },
          { key: 'b', value: '2' },
        ]);
        expect(await adapter.deleteMany(['a', 'b'])).toBe(true);
        expect(await adapter.getMany(['a', 'b'])).toEqual([undefined, undefined]);
        await adapter.set('c', '3');
        expect((await adapter.removeEntry('', 'c', true))?.live).toBe(true);
        expect(await adapter.removeEntry('', 'c', true)).toBeUndefined();
      } finally {
        await adapter.disconnect();
      }
    });
  }

  it('with migrate: false, a missing schema is a SchemaError that names the fix', async () => {
    const adapter = new PostgresAdapter({
      pool,
      schema: newSchema('missing'),
      migrate: false,
      sweepInterval: 0,
    });
    const failure = adapter.get('k');
    await expect(failure).rejects.toBeInstanceOf(SchemaError);
    await expect(failure).rejects.toThrow(/initDb/);
    await adapter.disconnect();
  });

  it('creates the table UNLOGGED by default and LOGGED on request, switching an existing one', async () => {
    const schema = newSchema('persistence');
    const persistence = async () =>
      (
        await pool.query<{ relpersistence: string }>(
          'SELECT relpersistence FROM pg_class WHERE oid = to_regclass($1)',
          [`"${schema}".pgcache_entries`],
        )
      ).rows[0]?.relpersistence;
    await PostgresAdapter.initDb({ pool, schema });
    expect(await persistence()).toBe('u');
    await PostgresAdapter.initDb({ pool, schema, unlogged: false });
    expect(await persistence()).toBe('p');
  });

  it('installs the change trigger only for a user that needs change events, and keeps it', async () => {
    const schema = newSchema('change_events');
    const triggers = async () =>
      (
        await pool.query<{ tgname: string }>(
          `SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = 'pgcache_notify_trigger'`,
          [`"${schema}".pgcache_entries`],
        )
      ).rowCount;
    await PostgresAdapter.initDb({ pool, schema });
    expect(await triggers()).toBe(0);
    await PostgresAdapter.initDb({ pool, schema, changeEvents: true });
    expect(await triggers()).toBe(1);
    // A plain adapter arriving later leaves it in place: others may be listening.
    const plain = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await plain.set('k', 'v');
    await plain.disconnect();
    expect(await triggers()).toBe(1);
  });

  it('changing notifyChannel re-points the trigger without hand-written SQL', async () => {
    const schema = newSchema('channel');
    const listener = await listenOn('first_channel', 'second_channel');

    const first = new PostgresAdapter({
      pool,
      schema,
      notifyChannel: 'first_channel',
      changeEvents: true,
      sweepInterval: 0,
    });
    await first.set('a', '1');
    const second = new PostgresAdapter({
      pool,
      schema,
      notifyChannel: 'second_channel',
      changeEvents: true,
      sweepInterval: 0,
    });
    await second.set('b', '2');
    await listener.drain();
    await listener.end();

    const repoint = JSON.stringify({ op: 'repoint', to: 'second_channel', by: second.startId });
    expect(listener.received).toEqual([
      {
        channel: 'first_channel',
        payload: JSON.stringify({ op: 'repoint', to: 'first_channel', by: first.startId }),
      },
      { channel: 'first_channel', payload: expect.stringContaining('"key" : "a"') },
      // Whoever listens on either channel is told to check where the trigger points now.
      { channel: 'first_channel', payload: repoint },
      { channel: 'second_channel', payload: repoint },
      { channel: 'second_channel', payload: expect.stringContaining('"key" : "b"') },
    ]);
  });
});

/** A new role with only USAGE on the schema and DML on the cache table; its connection URL. */
async function runtimeRole(schema: string): Promise<URL> {
  const role = `pgcache_runtime_${randomBytes(4).toString('hex')}`;
  roles.push(role);
  await pool.query(`CREATE ROLE "${role}" LOGIN PASSWORD 'runtime'`);
  await pool.query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
  await pool.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON "${schema}".pgcache_entries TO "${role}"`);
  const url = new URL(databaseUrl());
  url.username = role;
  url.password = 'runtime';
  return url;
}

describe('a runtime role without DDL rights', () => {
  it('works with only USAGE on the schema and SELECT/INSERT/UPDATE/DELETE on the table', async () => {
    const schema = newSchema('runtime_role');
    await PostgresAdapter.initDb({ pool, schema });
    const url = await runtimeRole(schema);
    const adapter = new PostgresAdapter({ connectionString: url.toString(), schema, sweepInterval: 0 });
    adapter.namespace = 'app';
    await adapter.set('k', 'v', 60_000);
    await adapter.set('k', 'v2');
    expect(await adapter.get('k')).toBe('v2');
    expect(await adapter.delete('k')).toBe(true);
    await adapter.set('gone', 'soon', 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await adapter.sweep()).toBe(1);
    await adapter.clear();
    await adapter.disconnect();

    // The same role may not create a cache of its own: that takes initDb with a migration role.
    const denied = new PostgresAdapter({ connectionString: url.toString(), schema: newSchema('denied') });
    const failure = denied.get('k');
    await expect(failure).rejects.toBeInstanceOf(SchemaError);
    await expect(failure).rejects.toThrow(
      /schema version is 0.*may not change them: permission denied.*initDb/,
    );
    await denied.disconnect();
  });

  // As pg_restore --disable-triggers leaves them: ENABLE TRIGGER ALL makes them fire in ordinary sessions only.
  it('a role that may not run DDL still starts when only the triggers are off, and its cache keeps L1 off', async () => {
    const schema = newSchema('runtime_triggers');
    await PostgresCache.initDb({ pool, schema });
    const url = await runtimeRole(schema);
    await pool.query(`ALTER TABLE "${schema}".pgcache_entries DISABLE TRIGGER ALL`);
    await pool.query(`ALTER TABLE "${schema}".pgcache_entries ENABLE TRIGGER ALL`);
    for (const migrate of [true, false]) {
      const cache = new PostgresCache({
        connectionString: url.toString(),
        schema,
        migrate,
        sweepInterval: 0,
      });
      const errors: Error[] = [];
      cache.on('error', (error) => errors.push(error));
      await cache.init();
      expect(cache.coherent).toBe(false);
      expect(
        errors.some((error) => error instanceof SchemaError && /not ENABLE ALWAYS/.test(error.message)),
      ).toBe(true);
      cache.namespace = 'app';
      await cache.set('k', `v-${migrate}`);
      expect(await cache.get('k')).toBe(`v-${migrate}`);
      await cache.disconnect();
    }
  });
});
