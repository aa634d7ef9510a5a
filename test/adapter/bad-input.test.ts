import { randomBytes } from 'node:crypto';
import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectionError,
  InvalidIdentifierError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidValueError,
  PostgresAdapter,
} from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('bad_input');
const pool = adminPool();
let adapter: PostgresAdapter;

beforeAll(async () => {
  adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
  adapter.namespace = 'ns';
  await adapter.init();
});
afterAll(async () => {
  await adapter.disconnect();
  await dropSchema(schema);
  await pool.end();
});

describe('keys', () => {
  it('round-trips a 10 KB random key, an empty key and unicode keys', async () => {
    const keys = [
      randomBytes(5000).toString('hex'),
      '',
      'ключ-🔑-鍵',
      'a\tb\nc "quoted" \'single\' ; DROP TABLE x; --',
    ];
    for (const [index, key] of keys.entries()) {
      await adapter.set(key, `value-${index}`);
      expect(await adapter.get(key)).toBe(`value-${index}`);
      expect(await adapter.has(key)).toBe(true);
    }
    expect(await adapter.getMany(keys)).toEqual(keys.map((_, index) => `value-${index}`));
    expect(await adapter.deleteMany(keys)).toBe(true);
    expect(await adapter.getMany(keys)).toEqual(keys.map(() => undefined));
  });

  it('round-trips a 1 MB key through Keyv', async () => {
    const keyv = new Keyv({ store: adapter, namespace: 'big' });
    const key = randomBytes(512 * 1024).toString('hex');
    await keyv.set(key, { ok: true });
    expect(await keyv.get(key)).toEqual({ ok: true });
    expect([...(await collect(keyv))].map(([k]) => k)).toEqual([key]);
  });

  it('rejects a NUL byte in a key with a typed error and stores nothing', async () => {
    await expect(adapter.set('a\u0000b', 'v')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(adapter.get('a\u0000b')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(adapter.getMany(['ok', 'a\u0000b'])).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await adapter.has('a')).toBe(false);
  });

  it('rejects an unpaired surrogate rather than storing U+FFFD', async () => {
    await expect(adapter.set('x\uD800y', 'v')).rejects.toMatchObject({ code: 'ERR_PGCACHE_INVALID_KEY' });
    await adapter.set('emoji-\uD83D\uDE00', 'paired surrogates are fine');
    expect(await adapter.get('emoji-\uD83D\uDE00')).toBe('paired surrogates are fine');
  });

  it('rejects a non-string key', async () => {
    await expect(adapter.set(42 as unknown as string, 'v')).rejects.toBeInstanceOf(InvalidKeyError);
  });
});

describe('values', () => {
  it('rejects values it would have to convert, and NUL bytes', async () => {
    await expect(adapter.set('k', { not: 'serialised' })).rejects.toBeInstanceOf(InvalidValueError);
    await expect(adapter.set('k', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidValueError);
    await expect(adapter.set('k', 'a\u0000b')).rejects.toBeInstanceOf(InvalidValueError);
    await expect(
      adapter.setMany([
        { key: 'k1', value: 'fine' },
        { key: 'k2', value: 7 },
      ]),
    ).rejects.toBeInstanceOf(InvalidValueError);
    // A rejected batch writes nothing.
    expect(await adapter.has('k1')).toBe(false);
  });

  it('stores NUL bytes and lone surrogates when Keyv serialises them (JSON escapes them)', async () => {
    const keyv = new Keyv({ store: adapter, namespace: 'escaped' });
    await keyv.set('k', 'a\u0000b\uD800c');
    expect(await keyv.get('k')).toBe('a\u0000b\uD800c');
  });

  it('rejects a ttl that is not a number, and writes nothing', async () => {
    await adapter.set('k', 'v');
    await expect(adapter.set('k', 'w', Number.NaN)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(adapter.set('k', 'w', '1000' as unknown as number)).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    expect(await adapter.get('k')).toBe('v');
  });

  it('refuses, with a typed error, a ttl that cannot even be turned into text', async () => {
    await adapter.set('k', 'v');
    const hostile = [Object.create(null), Symbol('ttl')] as unknown as number[];
    for (const ttl of hostile)
      await expect(adapter.set('k', 'w', ttl)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(await adapter.get('k')).toBe('v');
  });

  it('a Keyv user gets the typed error back with throwOnErrors', async () => {
    const keyv = new Keyv({ store: adapter, throwOnErrors: true });
    await expect(keyv.set('a\u0000', 'v')).rejects.toBeInstanceOf(InvalidKeyError);
  });
});

describe('lists of keys and entries', () => {
  it('refuses what is not a list with a typed error', async () => {
    const notLists = ['k', null, undefined, 42, { 0: 'k' }] as unknown as string[][];
    for (const keys of notLists) {
      await expect(adapter.getMany(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(adapter.hasMany(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(adapter.deleteMany(keys)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(adapter.setMany(keys as never)).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(adapter.setMany([null] as never)).rejects.toBeInstanceOf(InvalidKeyError);
  });
});

describe('options', () => {
  it('refuses a switch that is not true or false (the string "false" would read as true)', () => {
    for (const name of ['migrate', 'unlogged', 'changeEvents']) {
      for (const value of ['false', 0, 1, null]) {
        expect(() => new PostgresAdapter({ pool, schema, [name]: value })).toThrow(InvalidOptionError);
      }
    }
  });

  it('refuses, with a typed error, an option that cannot even be turned into text', () => {
    for (const value of [Symbol('size'), Object.create(null)]) {
      expect(() => new PostgresAdapter({ pool, schema, poolSize: value })).toThrow(InvalidOptionError);
      expect(() => new PostgresAdapter({ pool, schema, connectionTimeout: value })).toThrow(
        InvalidOptionError,
      );
    }
  });
});

describe('namespaces given explicitly', () => {
  const calls: Array<[string, (namespace: string) => Promise<unknown>]> = [
    ['readEntry', (ns) => adapter.readEntry(ns, 'k')],
    ['readEntries', (ns) => adapter.readEntries(ns, ['k'])],
    ['writeEntry', (ns) => adapter.writeEntry(ns, 'k', 'v')],
    ['writeEntries', (ns) => adapter.writeEntries(ns, [{ key: 'k', value: 'v' }])],
    ['removeEntry', (ns) => adapter.removeEntry(ns, 'k')],
    ['removeEntries', (ns) => adapter.removeEntries(ns, ['k'])],
    ['clearNamespace', (ns) => adapter.clearNamespace(ns)],
    ['hasEntry', (ns) => adapter.hasEntry(ns, 'k')],
    ['hasEntries', (ns) => adapter.hasEntries(ns, ['k'])],
    ['iterator', async (ns) => adapter.iterator(ns).next()],
  ];

  it.each(calls)('%s refuses a NUL or an unpaired surrogate with InvalidKeyError', async (_, call) => {
    for (const namespace of ['n\u0000', 'n\uD800', 'n\uDC00', 42 as unknown as string]) {
      await expect(call(namespace)).rejects.toBeInstanceOf(InvalidKeyError);
    }
  });

  it('so two different lone surrogates never name one stored namespace', async () => {
    await expect(adapter.writeEntry('n\uD800', 'k', 'secret')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await adapter.readEntry('n\uFFFD', 'k')).toBeUndefined();
  });
});

describe('identifiers', () => {
  const hostile = [
    'public"; DROP TABLE x; --',
    "it's",
    'a b',
    'semi;colon',
    '',
    '1starts_with_digit',
    'x'.repeat(64),
  ];

  it.each(hostile)('refuses schema %j before touching the database', (name) => {
    expect(() => new PostgresAdapter({ pool, schema: name })).toThrow(InvalidIdentifierError);
  });

  it.each(hostile.filter((name) => name !== ''))('refuses table prefix %j', (name) => {
    expect(() => new PostgresAdapter({ pool, tablePrefix: name })).toThrow(InvalidIdentifierError);
  });

  it.each(hostile)('refuses notify channel %j', (name) => {
    expect(() => new PostgresAdapter({ pool, notifyChannel: name })).toThrow(InvalidIdentifierError);
  });

  it('derives a legal, distinct change channel for a schema too long for the default one', async () => {
    // 63 characters: a legal schema, but `<schema>_pgcache_events` would be 78.
    const long = `${uniqueSchema('long')}_`.padEnd(63, 'x');
    const channel = (options: object) =>
      new PostgresAdapter({ pool, schema: long, sweepInterval: 0, ...options }).options.notifyChannel;
    expect(channel({}).length).toBeLessThanOrEqual(63);
    expect(channel({})).toBe(channel({}));
    expect(channel({})).not.toBe(channel({ tablePrefix: 'other_' }));
    expect(channel({ notifyChannel: 'mine' })).toBe('mine');
    const cache = new PostgresAdapter({ pool, schema: long, changeEvents: true, sweepInterval: 0 });
    try {
      await cache.set('k', 'v');
      expect(await cache.get('k')).toBe('v');
    } finally {
      await cache.disconnect();
      await dropSchema(long);
    }
  });

  it('refuses a prefix that makes a name past 63 bytes', () => {
    expect(() => new PostgresAdapter({ pool, tablePrefix: `p${'x'.repeat(55)}` })).toThrow(
      InvalidIdentifierError,
    );
  });
});

describe('disconnect() with a statement waiting for a pool connection', () => {
  it('lets it finish rather than leave it waiting until connectionTimeout', async () => {
    const adapter = new PostgresAdapter({
      connectionString: databaseUrl(),
      schema,
      poolSize: 1,
      connectionTimeout: 20_000,
      sweepInterval: 0,
    });
    await adapter.init();
    const held = await adapter.pool.connect();
    const started = Date.now();
    const reading = adapter.get('k').then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = adapter.disconnect();
    // Given back only once disconnect() had time to end the pool.
    await new Promise((resolve) => setTimeout(resolve, 200));
    held.release();
    expect(await reading).toEqual({ value: undefined });
    await closing;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('a dead database', () => {
  it('fails fast with a ConnectionError, and the adapter stays usable afterwards', async () => {
    const dead = new PostgresAdapter({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeout: 1000,
      sweepInterval: 0,
    });
    const started = Date.now();
    await expect(dead.get('k')).rejects.toBeInstanceOf(ConnectionError);
    await expect(dead.set('k', 'v')).rejects.toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(5000);
    await dead.disconnect();
    await expect(dead.get('k')).rejects.toMatchObject({ code: 'ERR_PGCACHE_DISCONNECTED' });
  });

  it('a database or a role that does not exist is a ConnectionError: the login was refused', async () => {
    const noDatabase = new URL(databaseUrl());
    noDatabase.pathname = `/${schema}_missing`;
    const noRole = new URL(databaseUrl());
    noRole.username = `${schema}_nobody`;
    for (const url of [noDatabase, noRole]) {
      const refused = new PostgresAdapter({ connectionString: url.href, schema, sweepInterval: 0 });
      await expect(refused.get('k')).rejects.toBeInstanceOf(ConnectionError);
      await refused.disconnect();
    }
  });

  it('a server refusing more connections (53300) is a ConnectionError too', async () => {
    const role = `${schema}_full`;
    await pool.query(`CREATE ROLE "${role}" LOGIN CONNECTION LIMIT 0`);
    try {
      const url = new URL(databaseUrl());
      url.username = role;
      url.password = '';
      const refused = new PostgresAdapter({ connectionString: url.href, schema, sweepInterval: 0 });
      const failure = await refused.get('k').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ConnectionError);
      expect((failure as ConnectionError).cause).toMatchObject({ code: '53300' });
      await refused.disconnect();
    } finally {
      await pool.query(`DROP ROLE "${role}"`);
    }
  });

  it('reports it through Keyv as an error event, not a crash', async () => {
    const dead = new PostgresAdapter({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      sweepInterval: 0,
    });
    const keyv = new Keyv({ store: dead });
    const errors: unknown[] = [];
    keyv.on('error', (error) => errors.push(error));
    expect(await keyv.set('k', 'v')).toBe(false);
    expect(errors[0]).toBeInstanceOf(ConnectionError);
    await dead.disconnect();
  });
});

async function collect(keyv: Keyv): Promise<Array<[string, unknown]>> {
  const entries: Array<[string, unknown]> = [];
  if (!keyv.iterator) throw new Error('Keyv did not wire the iterator');
  for await (const entry of keyv.iterator(keyv.namespace)) entries.push(entry as [string, unknown]);
  return entries;
}
