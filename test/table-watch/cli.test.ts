import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand, UsageError } from '../../src/cli/args.js';
import { listTableWatches } from '../../src/index.js';
import { finished } from '../support/child.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { q } from './support.js';

const schema = uniqueSchema('tw_cli');
const pool = adminPool();
const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** The command line as a real process: `npx postgres-cache …` runs the same file, built. */
function run(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: databaseUrl() }) {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    env: { ...process.env, DATABASE_URL: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return finished(child, 60_000);
}

const watched = async () =>
  (await listTableWatches(pool, { cacheSchema: schema })).map((watch) => watch.table);

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
  await pool.query(`CREATE TABLE ${q(schema)}.users (id int PRIMARY KEY, email text)`);
  await pool.query(`CREATE TABLE ${q(schema)}.orders (id int PRIMARY KEY)`);
  await pool.query(`CREATE TABLE ${q(schema)}."a.b" (id int PRIMARY KEY)`);
});

afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('table names on the command line', () => {
  const tablesOf = (...names: string[]) => {
    const command = parseCommand(['watch', 'install', ...names, '--schema', 'app'], {});
    return command.name === 'watch' ? command.args.tables : [];
  };

  it('takes schema.table, a bare name in --schema, and SQL quoting for names with a dot', () => {
    expect(tablesOf('users', 'other.users', '"a.b"', 'other."a.b"', '"my schema"."x""y"', 'Mixed')).toEqual([
      { schema: 'app', table: 'users' },
      { schema: 'other', table: 'users' },
      { schema: 'app', table: 'a.b' },
      { schema: 'other', table: 'a.b' },
      { schema: 'my schema', table: 'x"y' },
      { schema: 'app', table: 'Mixed' },
    ]);
  });

  it('takes key columns bare (trimmed) or quoted as in SQL, for names with a comma or spaces of their own', () => {
    const keysOf = (list: string) => {
      const command = parseCommand(['watch', 'install', 'users', '--key', list], {});
      return command.name === 'watch' ? command.args.keyColumns : [];
    };
    expect(keysOf('id, email')).toEqual(['id', 'email']);
    expect(keysOf('" id", "a,b","x""y",Mixed')).toEqual([' id', 'a,b', 'x"y', 'Mixed']);
    expect(keysOf('')).toEqual([]);
    expect(keysOf('id,,x')).toEqual(['id', '', 'x']);
    for (const list of ['"open', '"a"x', '"a" "b"']) expect(() => keysOf(list)).toThrow(UsageError);
  });

  it('refuses names it cannot read as a usage error', () => {
    for (const name of ['"open', 'a.b.c', '.t', 's.', '"a"x', '']) {
      expect(() => tablesOf(name)).toThrow(UsageError);
    }
  });
});

describe('the database URL on the command line', () => {
  const urlOf = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const command = parseCommand(['watch', 'list', ...argv], env);
    return command.name === 'watch' ? command.args.url : undefined;
  };

  it('takes what pg reads as a connection string, from --url or DATABASE_URL', () => {
    for (const url of [
      'postgres://postgres@127.0.0.1:5432/test',
      'postgresql://db.example/app?sslmode=require',
      'socket:/var/run/postgresql?db=app',
      'postgres://app@/app?host=/var/run/postgresql',
      '/var/run/postgresql app',
    ]) {
      expect(urlOf(['--url', url])).toBe(url);
      expect(urlOf([], { DATABASE_URL: url })).toBe(url);
    }
  });

  it('refuses anything else as a usage error that names where it came from', () => {
    expect(() => urlOf(['--url', 'not a url'])).toThrow(/--url is not a PostgreSQL URL/);
    expect(() => urlOf([], { DATABASE_URL: 'mysql://h/db' })).toThrow(/DATABASE_URL is not a PostgreSQL URL/);
    expect(() => urlOf(['--url', 'localhost:5432'])).toThrow(UsageError);
  });
});

describe('postgres-cache watch', () => {
  it('install prints the SQL and changes nothing without --apply', async () => {
    const result = await run([
      'watch',
      'install',
      'users',
      'orders',
      '--schema',
      schema,
      '--cache-schema',
      schema,
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `-- watch "${schema}"."users": key id; channel ${schema}_pgcache_table_changes`,
    );
    expect(result.stdout).toContain(
      `CREATE TRIGGER "pgcache_watch" AFTER INSERT OR UPDATE OR DELETE ON ${q(schema)}."orders"`,
    );
    expect(result.stdout.match(/-- dry run: nothing was changed/g)).toHaveLength(2);
    expect(await watched()).toEqual([]);
  }, 120_000);

  it('install --apply (with --url, --key and --channel) installs; list shows it; uninstall --apply removes it', async () => {
    const url = ['--url', databaseUrl(), '--cache-schema', schema];
    const install = await run(
      [
        'watch',
        'install',
        `${schema}.users`,
        '--key',
        'id,email',
        '--channel',
        'tw_cli_channel',
        '--apply',
        ...url,
      ],
      {},
    );
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('-- applied');
    expect(await listTableWatches(pool, { cacheSchema: schema })).toEqual([
      {
        schema,
        table: 'users',
        channel: 'tw_cli_channel',
        keyColumns: ['id', 'email'],
        operations: ['insert', 'update', 'delete', 'truncate'],
      },
    ]);
    const again = await run(
      [
        'watch',
        'install',
        `${schema}.users`,
        '--key',
        'id,email',
        '--channel',
        'tw_cli_channel',
        '--apply',
        ...url,
      ],
      {},
    );
    expect(again.stdout).toContain('-- already watched like this: nothing to change');

    const list = await run(['watch', 'list', ...url], {});
    expect(list.code).toBe(0);
    expect(list.stdout).toBe(
      `"${schema}"."users"  key: id, email  channel: tw_cli_channel  on: insert, update, delete, truncate\n`,
    );
    const json = await run(['watch', 'list', '--json', ...url], {});
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ table: 'users', keyColumns: ['id', 'email'] }),
    ]);

    const dry = await run(['watch', 'uninstall', 'users', '--schema', schema, ...url], {});
    expect(dry.stdout).toContain('DROP TRIGGER IF EXISTS "pgcache_watch"');
    expect(await watched()).toEqual(['users']);
    const uninstall = await run(['watch', 'uninstall', 'users', '--schema', schema, '--apply', ...url], {});
    expect(uninstall.code).toBe(0);
    expect(await watched()).toEqual([]);
    expect((await run(['watch', 'list', ...url], {})).stdout).toBe('no tables are watched\n');
  }, 120_000);

  it('--apply plans every table first: one that does not exist changes none of the others', async () => {
    const where = ['--schema', schema, '--cache-schema', schema];
    const failed = await run(['watch', 'install', 'users', 'missing', '--apply', ...where]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/missing/);
    expect(await watched()).toEqual([]);
    const dotted = await run(['watch', 'install', '"a.b"', '--apply', ...where]);
    expect(dotted.code).toBe(0);
    expect(await watched()).toEqual(['a.b']);
    expect((await run(['watch', 'uninstall', '"a.b"', '--apply', ...where])).code).toBe(0);
    expect(await watched()).toEqual([]);
  }, 120_000);

  it('called wrongly: exit code 2 and the usage; failing: exit code 1 and the typed error', async () => {
    const usage = [
      ['watch', 'install'],
      ['watch', 'frobnicate'],
      ['watch', 'install', 'users', '--bogus'],
      ['watch', 'list', 'users'],
      ['watch', 'uninstall', 'users', '--key', 'id'],
      ['watch', 'install', 'users', '--lock-timeout', 'soon'],
      ['watch', 'install', 'users', '--lock-timeout', '0'],
      ['watch', 'install', 'users', '--lock-timeout', '3000000000'],
      ['watch', 'list', '--lock-timeout', '100'],
      ['watch', 'list', '--url', 'not a url'],
      ['nonsense'],
      [],
      ['watch'],
    ];
    for (const args of usage) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain('Usage: postgres-cache watch');
    }
    const noUrl = await run(['watch', 'list'], {});
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain('no database: give --url or set DATABASE_URL');

    const missing = await run(['watch', 'install', 'nope', '--schema', schema, '--cache-schema', schema]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ERR_PGCACHE_INVALID_OPTION: .*does not exist/);
    const hostile = await run([
      'watch',
      'install',
      'users',
      '--schema',
      schema,
      '--channel',
      'x"; DROP TABLE users; --',
    ]);
    // A name that cannot be one is a call made wrongly: exit code 2, the typed error and the usage.
    expect(hostile.code).toBe(2);
    expect(hostile.stderr).toContain('ERR_PGCACHE_INVALID_IDENTIFIER');
    expect(hostile.stderr).toContain('Usage: postgres-cache watch');
    for (const option of [
      ['--key', 'id,,x'],
      ['--prefix', 'bad-prefix'],
      ['--cache-schema', 'Bad Schema'],
    ]) {
      const result = await run(['watch', 'install', 'users', '--schema', schema, ...option]);
      expect(result.code, option.join(' ')).toBe(2);
      expect(result.stderr).toContain('ERR_PGCACHE_INVALID_IDENTIFIER');
    }
    // A bad name after a good one: refused before the good one is watched.
    const before = await watched();
    const partial = await run([
      'watch',
      'install',
      'orders',
      'x'.repeat(70),
      '--schema',
      schema,
      '--cache-schema',
      schema,
      '--apply',
    ]);
    expect(partial.code).toBe(2);
    expect(partial.stdout).toBe('');
    expect(await watched()).toEqual(before);
    expect((await run(['--help'])).stdout).toContain('watch install <table…>');
    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
  }, 120_000);

  it('--lock-timeout: install gives up on a table another transaction is writing to, and changes nothing', async () => {
    await pool.query(`CREATE TABLE ${q(schema)}.busy (id int PRIMARY KEY)`);
    const writer = new pg.Client({ connectionString: databaseUrl() });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`INSERT INTO ${q(schema)}.busy VALUES (1)`);
      const started = Date.now();
      const install = await run([
        'watch',
        'install',
        'busy',
        '--schema',
        schema,
        '--cache-schema',
        schema,
        '--apply',
        '--lock-timeout',
        '300',
      ]);
      expect(install.code).toBe(1);
      expect(install.stderr).toMatch(/ERR_PGCACHE_QUERY: .*lock timeout/);
      // Well short of the 5 s default.
      expect(Date.now() - started).toBeLessThan(4_500);
      expect(await watched()).not.toContain('busy');
    } finally {
      await writer.query('ROLLBACK');
      await writer.end();
    }
  }, 120_000);

  it('a server that accepts the connection and never answers: exit code 1 with a connection error', async () => {
    const proxy = await startTcpProxy(databaseUrl(), 'silent');
    try {
      const list = await run(['watch', 'list', '--url', proxy.url]);
      expect(list.code).toBe(1);
      expect(list.stderr).toContain('ERR_PGCACHE_CONNECTION');
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
