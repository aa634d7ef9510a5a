import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CachedFunction,
  CacheTags,
  cached,
  InvalidKeyError,
  InvalidOptionError,
  installTableWatch,
  invalidateOnTableChange,
  PostgresCache,
  type TableInvalidation,
  tableChangeChannel,
  windowed,
} from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, sleep, uniqueSchema } from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { gate } from '../wrap/support.js';
import { q } from './support.js';

const schema = uniqueSchema('tw_cached');
const pool = adminPool();
const users = `${q(schema)}.users`;
let cache: PostgresCache;
const closers: Array<{ close(): Promise<void> }> = [];

function track<T extends { close(): Promise<void> }>(thing: T): T {
  closers.push(thing);
  return thing;
}

/** A loader over the users table that counts its runs. */
function userNameLoader() {
  const loader = async (id: number) => {
    loader.runs++;
    const { rows } = await pool.query<{ name: string }>(`SELECT name FROM ${users} WHERE id = $1`, [id]);
    return rows[0]?.name ?? null;
  };
  loader.runs = 0;
  return loader;
}

async function setName(id: number, name: string) {
  await pool.query(
    `INSERT INTO ${users} VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name`,
    [id, name],
  );
}

/** Resolves once the result of `id` is the table's current name (that is, the old one was dropped). */
const refreshed = (fn: CachedFunction<[number], string | null>, id: number, name: string | null) =>
  eventually(async () => (await fn(id)) === name, 15_000, 25);

/** Waits until the invalidation has carried out `count` evictions. */
const evictions = (invalidation: TableInvalidation | undefined, count: number) =>
  eventually(() => (invalidation?.stats.evictions ?? 0) >= count, 15_000);

/**
 * Returns once `invalidation` has acted on every change committed before this call: `change` writes a marker
 * row whose eviction `isMarker` recognises, and evictions happen in commit order, after the earlier ones.
 */
async function drained(
  invalidation: TableInvalidation | undefined,
  change: () => Promise<unknown>,
  isMarker: (eviction: { keys: string[]; tags: string[] }) => boolean,
): Promise<void> {
  if (!invalidation) throw new Error('no invalidation rule');
  let onEvict: (eviction: { keys: string[]; tags: string[] }) => void = () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const seen = new Promise<void>((resolve, reject) => {
    onEvict = (eviction) => {
      if (isMarker(eviction)) resolve();
    };
    timer = setTimeout(() => reject(new Error('the marker change was never evicted')), 15_000);
  });
  invalidation.on('evict', onEvict);
  try {
    await change();
    await seen;
  } finally {
    clearTimeout(timer);
    invalidation.off('evict', onEvict);
  }
}

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
  await pool.query(`CREATE TABLE ${users} (id int PRIMARY KEY, name text)`);
  await pool.query(`CREATE TABLE ${q(schema)}.posts (id int PRIMARY KEY, author int, title text)`);
  await installTableWatch(pool, { schema, table: 'users', cacheSchema: schema });
  // The author travels with each event, for the rules that tag by it.
  await installTableWatch(pool, {
    schema,
    table: 'posts',
    cacheSchema: schema,
    keyColumns: ['id', 'author'],
  });
  cache = new PostgresCache({ connectionString: databaseUrl(), schema, namespace: 'app', sweepInterval: 0 });
  await cache.init();
});

afterAll(async () => {
  for (const closer of closers) await closer.close();
  await cache.disconnect();
  await dropSchema(schema);
  await pool.end();
});

/**
 * One function cached twice under `name`: `late` on a cache (on `connectionString`) that hears events `delayMs`
 * late (its LISTEN goes through a delaying proxy), `prompt` on the shared cache. `runReading(id)` stores
 * 'before' as the user's name and starts a call of `late`, answering once it has read it and waits at `held`.
 */
async function lateHearing(name: string, delayMs: number, connectionString = databaseUrl()) {
  const proxy = await startTcpProxy(databaseUrl());
  proxy.serverDelayMs = delayMs;
  const lateEars = new PostgresCache({
    connectionString,
    listenerConnectionString: proxy.url,
    schema,
    namespace: 'app',
    sweepInterval: 0,
  });
  lateEars.on('error', () => undefined);
  const held = gate();
  let reads = 0;
  const load = async (id: number) => {
    const { rows } = await pool.query(`SELECT name FROM ${users} WHERE id = $1`, [id]);
    reads++;
    await held.opened;
    return rows[0]?.name as string;
  };
  const late = cached(load, { cache: lateEars, name, key: String });
  const prompt = track(cached(load, { cache, name, key: String }));
  await Promise.all([late.ready, prompt.ready]);
  const runReading = async (id: number) => {
    await setName(id, 'before');
    const run = late(id);
    expect(await eventually(() => reads === 1)).toBe(true);
    // Wrapped: an async function would otherwise wait for the run it returns.
    return { run };
  };
  const close = async () => {
    held.open();
    await late.close();
    await lateEars.disconnect();
    await proxy.close();
  };
  return { late, prompt, held, runReading, close };
}

describe('cached()', () => {
  it('caches per arguments and drops exactly the result whose row changed (an UPDATE over a plain connection)', async () => {
    await setName(1, 'ann');
    await setName(2, 'bob');
    const load = userNameLoader();
    const userName = track(
      cached(load, {
        cache,
        name: 'userName',
        key: (id) => String(id),
        invalidateOn: { table: 'users', keys: (row) => [String(row.id)] },
      }),
    );
    await userName.ready;
    expect([await userName(1), await userName(1), await userName(2), await userName(2)]).toEqual([
      'ann',
      'ann',
      'bob',
      'bob',
    ]);
    expect(load.runs).toBe(2);
    await pool.query(`UPDATE ${users} SET name = 'ANN' WHERE id = 1`);
    expect(await refreshed(userName, 1, 'ANN')).toBe(true);
    expect(load.runs).toBe(3);
    // id 2 did not change: still served from the cache.
    expect(await userName(2)).toBe('bob');
    expect(load.runs).toBe(3);
    expect(userName.stats).toMatchObject({ loads: 3, bypassed: 0, errors: 0 });
  });

  it("stores results in Keyv's format: a Keyv on its namespace reads them, and the other way round", async () => {
    // Keyv escapes a string that starts with a colon; plain JSON would not, and '::1' would read as ':1'.
    const address = track(
      cached(async (host: string) => (host === 'localhost' ? '::1' : ':other'), {
        cache,
        name: 'address',
        key: (host) => host,
      }),
    );
    await address.ready;
    const other = new PostgresCache({ pool, schema, sweepInterval: 0 });
    const keyv = new Keyv({ store: other, namespace: 'cached:address' });
    try {
      expect(await address('localhost')).toBe('::1');
      expect(await keyv.get('localhost')).toBe('::1');
      await keyv.set('remote', ':abc', 60_000);
      expect(await address('remote')).toBe(':abc');
      expect(address.stats.loads).toBe(1);
    } finally {
      await other.disconnect();
    }
  });

  it('a table name drops every result on any change; a key change drops the old and the new key', async () => {
    await setName(2, 'bob');
    await setName(3, 'cy');
    const load = userNameLoader();
    const anyChange = track(cached(load, { cache, name: 'anyChange', invalidateOn: 'users' }));
    const byKey = track(
      cached(userNameLoader(), {
        cache,
        name: 'byKey',
        key: (id) => String(id),
        invalidateOn: { table: 'users', keys: (row) => [String(row.id)] },
      }),
    );
    await Promise.all([anyChange.ready, byKey.ready]);
    expect(await anyChange(3)).toBe('cy');
    expect(await anyChange(2)).toBe('bob');
    expect(await byKey(300)).toBeNull();
    expect(await byKey(3)).toBe('cy');
    await pool.query(`UPDATE ${users} SET id = 300 WHERE id = 3`);
    expect(await refreshed(byKey, 300, 'cy')).toBe(true);
    // The old key's result went too: row 3 is no more.
    expect(await refreshed(byKey, 3, null)).toBe(true);
    expect(await refreshed(anyChange, 3, null)).toBe(true);
    const runs = load.runs;
    expect(await anyChange(2)).toBe('bob');
    // Row 2 did not change, but the whole function depended on the table.
    expect(load.runs).toBe(runs + 1);
    await pool.query(`UPDATE ${users} SET id = 3 WHERE id = 300`);
  });

  it('operations filter: a delete-only rule ignores updates (proved by a later delete that does evict)', async () => {
    await setName(4, 'dee');
    await setName(5, 'eve');
    const load = userNameLoader();
    const onDelete = track(
      cached(load, {
        cache,
        name: 'onDelete',
        key: (id) => String(id),
        invalidateOn: { table: 'users', operations: ['delete'], keys: (row) => [String(row.id)] },
      }),
    );
    await onDelete.ready;
    expect(await onDelete(4)).toBe('dee');
    expect(await onDelete(5)).toBe('eve');
    await pool.query(`UPDATE ${users} SET name = 'DEE' WHERE id = 4`);
    await pool.query(`DELETE FROM ${users} WHERE id = 5`);
    // Events arrive in commit order: once the delete's eviction is done, the update was seen and skipped.
    expect(await evictions(onDelete.invalidation, 1)).toBe(true);
    expect(onDelete.invalidation?.stats.events).toBe(1);
    expect(await onDelete(4)).toBe('dee');
    expect(await onDelete(5)).toBeNull();
    expect(load.runs).toBe(3);
  });

  it('a result loaded before its row changed is not kept, nor handed to a call made after the event', async () => {
    await setName(6, 'old');
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let runs = 0;
    const slow = track(
      cached(
        async (id: number) => {
          runs++;
          const { rows } = await pool.query(`SELECT name FROM ${users} WHERE id = $1`, [id]);
          if (runs === 1) await gate;
          return rows[0]?.name as string;
        },
        {
          cache,
          name: 'slow',
          key: (id) => String(id),
          invalidateOn: { table: 'users', keys: (row) => [String(row.id)] },
        },
      ),
    );
    await slow.ready;
    // The process's listener may already be listening: let the event of setName() above be dealt with
    // first, so that the eviction counted below is the UPDATE's.
    await drained(
      slow.invalidation,
      () => setName(999, 'marker'),
      (eviction) => eviction.keys.some((key) => key.endsWith('999')),
    );
    const before = slow.invalidation?.stats.evictions ?? 0;
    const first = slow(6);
    await eventually(() => runs === 1, 15_000);
    await pool.query(`UPDATE ${users} SET name = 'new' WHERE id = 6`);
    // The event has arrived (and found nothing to delete) before the stale load finishes.
    expect(await evictions(slow.invalidation, before + 1)).toBe(true);
    // A call made now does not join the run that read the old row: it runs afresh.
    const joinedStale = new Promise((resolve) => setTimeout(() => resolve('joined the stale run'), 3000));
    expect(await Promise.race([slow(6), joinedStale])).toBe('new');
    expect(runs).toBe(2);
    release();
    expect(await first).toBe('old');
    expect(slow.stats.refusedWrites).toBe(1);
    expect(await slow(6)).toBe('new');
    expect(runs).toBe(2);
  });

  it('with a windowed rule, a result loaded before its row changed is refused once the event arrives, before the window evicts', async () => {
    await setName(61, 'old');
    const held = gate();
    const firstRead = gate();
    let runs = 0;
    const slow = track(
      cached(
        async (id: number) => {
          runs++;
          const { rows } = await pool.query(`SELECT name FROM ${users} WHERE id = $1`, [id]);
          if (runs === 1) {
            firstRead.open();
            await held.opened;
          }
          return rows[0]?.name as string;
        },
        {
          cache,
          name: 'slowWindowed',
          key: String,
          // The window outlasts the test: only the event's arrival can tell the run its row changed.
          invalidateOn: {
            table: 'users',
            keys: (row) => [String(row.id)],
            strategy: windowed({ maxEvents: 1000, maxWait: 600_000 }),
          },
        },
      ),
    );
    await slow.ready;
    // Lets a late event of setName() above arrive first.
    await sleep(300);
    const events = slow.invalidation?.stats.events ?? 0;
    const first = slow(61);
    // The row is changed once the first run has read it, not while its query is on its way.
    await firstRead.opened;
    await pool.query(`UPDATE ${users} SET name = 'new' WHERE id = 61`);
    expect(await eventually(() => (slow.invalidation?.stats.events ?? 0) > events, 15_000)).toBe(true);
    held.open();
    expect(await first).toBe('old');
    expect(slow.stats.refusedWrites).toBe(1);
    expect(slow.invalidation?.stats.evictions).toBe(0);
    expect(await slow(61)).toBe('new');
  });

  it('a failed first call rejects its callers and does not hang or poison the calls after it', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const flaky = track(
      cached(
        async (id: number) => {
          runs++;
          if (runs === 1) {
            await gate;
            throw new Error('database hiccup');
          }
          return `value ${id}`;
        },
        { cache, name: 'flaky', invalidateOn: 'users' },
      ),
    );
    await flaky.ready;
    const first = flaky(1);
    const joined = flaky(1);
    release();
    await expect(first).rejects.toThrow('database hiccup');
    await expect(joined).rejects.toThrow('database hiccup');
    expect(runs).toBe(1);
    expect(await flaky(1)).toBe('value 1');
    expect(await flaky(1)).toBe('value 1');
    expect(runs).toBe(2);
  });

  it('a cancelled first call leaves the run to the callers after it, and its result is still stored', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = track(
      cached(
        async (id: number) => {
          runs++;
          await gate;
          return `value ${id}`;
        },
        { cache, name: 'cancelled', invalidateOn: 'users' },
      ),
    );
    await slow.ready;
    const controller = new AbortController();
    const first = slow.invoke([7], { signal: controller.signal });
    const second = slow(7);
    controller.abort();
    await expect(first).rejects.toMatchObject({ name: 'AbortError' });
    release();
    expect(await second).toBe('value 7');
    expect(await slow(7)).toBe('value 7');
    expect(runs).toBe(1);
    // A caller whose signal is already aborted does not start anything.
    await expect(slow.invoke([8], { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(runs).toBe(1);
  });

  it('a caller can stop waiting for a run that never ends', async () => {
    const stuck = track(
      cached(async (_id: number) => new Promise<string>(() => undefined), {
        cache,
        name: 'stuck',
        invalidateOn: 'users',
      }),
    );
    await expect(stuck.invoke([1], { signal: AbortSignal.timeout(50) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
  });

  it('without table rules, stores nothing while deletes made elsewhere cannot reach it (no LISTEN)', async () => {
    const deaf = new PostgresCache({
      connectionString: databaseUrl(),
      listenerConnectionString: 'postgres://postgres@127.0.0.1:1/none',
      schema,
      namespace: 'app',
      sweepInterval: 0,
      connectionTimeout: 500,
      reconnect: { initialDelay: 50, maxDelay: 200 },
    });
    deaf.on('error', () => undefined);
    let runs = 0;
    const plain = cached(
      async (id: number) => {
        runs++;
        return `value ${id}`;
      },
      { cache: deaf, name: 'deaf', key: String, onError: () => undefined },
    );
    expect(await plain(1)).toBe('value 1');
    expect(await plain(1)).toBe('value 1');
    expect(runs).toBe(2);
    expect(plain.stats.refusedWrites).toBe(2);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM ${deaf.adapter.names.entries} WHERE namespace = $1`,
      [plain.namespace],
    );
    expect(rows[0]?.n).toBe(0);
    await plain.close();
    await deaf.disconnect();
  });

  it("a result stored before another cache's invalidate() was heard is deleted once its own event is back (before close() returns)", async () => {
    // This cache hears events 100 ms late: the delete comes after its own write has answered.
    const { late, prompt, held, runReading, close } = await lateHearing('late', 100);
    try {
      // The run is held after its read until the update and the invalidation have committed.
      const { run } = await runReading(50);
      await setName(50, 'after');
      await prompt.invalidate(50);
      held.open();
      expect(await run).toBe('before');
      // close() lets the stored result wait for its own event first, which comes after the delete's.
      await late.close();
      expect(late.stats.refusedWrites).toBe(1);
      expect(await prompt(50)).toBe('after');
    } finally {
      await close();
    }
  });

  it("another cache's clear() heard while a run is computing: its result is not stored", async () => {
    const { late, prompt, held, runReading, close } = await lateHearing('cleared', 0);
    try {
      const { run } = await runReading(80);
      await setName(80, 'after');
      await prompt.clear();
      // The clear's event reaches the running cache before its run ends.
      await sleep(500);
      held.open();
      expect(await run).toBe('before');
      // Whatever it wrote has heard its own event back by now (close() would delete it, and hide a bad write).
      await sleep(500);
      expect(late.stats.refusedWrites).toBe(1);
      expect(await prompt(80)).toBe('after');
    } finally {
      await close();
    }
  });

  it("a result stored before another cache's invalidate() was heard is deleted once its own event is back, while the cache stays open", async () => {
    const { late, prompt, held, runReading, close } = await lateHearing('late-open', 100);
    try {
      const { run } = await runReading(55);
      await setName(55, 'after');
      await prompt.invalidate(55);
      held.open();
      expect(await run).toBe('before');
      // Not close(): that deletes whatever is still settling anyway.
      expect(await eventually(() => late.stats.refusedWrites === 1, 5000)).toBe(true);
      expect(await eventually(async () => (await prompt(55)) === 'after', 5000)).toBe(true);
    } finally {
      await close();
    }
  });

  it('close() while a run is on its way to the cache: nothing stale is left behind', async () => {
    const { late, prompt, held, runReading, close } = await lateHearing('closing', 100);
    try {
      const { run } = await runReading(70);
      await setName(70, 'after');
      await prompt.invalidate(70);
      held.open();
      const closed = late.close();
      expect(await run).toBe('before');
      await closed;
      expect(await prompt(70)).toBe('after');
    } finally {
      await close();
    }
  });

  it("waits for its write's own event, not any later version of the key (an insert keeps the version it drew first)", async () => {
    // The writer's inserts pause after drawing their version, before meeting the row (or its absence).
    const url = new URL(databaseUrl());
    url.searchParams.set('application_name', 'late_writer');
    await pool.query(`CREATE FUNCTION ${q(schema)}.pause_late_writer() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('application_name') = 'late_writer' THEN PERFORM pg_sleep(2); END IF;
        RETURN NEW;
      END $$`);
    await pool.query(`CREATE TRIGGER pause_late_writer BEFORE INSERT ON ${q(schema)}.pgcache_entries
      FOR EACH ROW EXECUTE FUNCTION ${q(schema)}.pause_late_writer()`);
    const { late, prompt, held, runReading, close } = await lateHearing('drawn', 800, url.toString());
    try {
      const { run } = await runReading(60);
      held.open();
      // The write has drawn its version and pauses: meanwhile another writer's row comes and is invalidated.
      const pausing = async () =>
        (
          await pool.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'late_writer' AND wait_event = 'PgSleep'",
          )
        ).rows[0]?.n === 1;
      expect(await eventually(pausing)).toBe(true);
      await pool.query(
        `INSERT INTO ${q(schema)}.pgcache_entries (namespace, key_hash, key, value) VALUES ($1, '\\x00', $2, $3)`,
        ['cached:drawn', 'cached:drawn:60', '{"value":"another writer"}'],
      );
      await setName(60, 'after');
      // 500 ms before the write goes on: its event (800 ms on the way) reaches the writer's process after the
      // write has answered, while the other writer's, with a version above the write's, has arrived before.
      await sleep(1500);
      await prompt.invalidate(60);
      expect(await run).toBe('before');
      await late.close();
      expect(await prompt(60)).toBe('after');
    } finally {
      await close();
      await pool.query(`DROP TRIGGER pause_late_writer ON ${q(schema)}.pgcache_entries`);
    }
  });

  it('tags: a change of a user drops the cached results of other functions that carry its tag', async () => {
    await setName(9, 'ida');
    await pool.query(
      `INSERT INTO ${q(schema)}.posts VALUES (1, 9, 'hello'), (2, 9, 'again'), (3, 2, 'other')`,
    );
    let runs = 0;
    const postTitles = track(
      cached(
        async (author: number) => {
          runs++;
          const { rows } = await pool.query(
            `SELECT p.title || ' by ' || u.name AS line FROM ${q(schema)}.posts p JOIN ${users} u ON u.id = p.author
              WHERE p.author = $1 ORDER BY p.id`,
            [author],
          );
          return rows.map((row) => row.line as string);
        },
        {
          cache,
          name: 'postTitles',
          key: (author) => String(author),
          tags: (author) => [`user:${author}`],
          invalidateOn: [
            { table: 'users', tags: (row) => [`user:${row.id}`] },
            { table: 'posts', tags: (row) => [`user:${row.author}`] },
          ],
        },
      ),
    );
    await postTitles.ready;
    // The events of the rows written above must not evict what the calls below store.
    await drained(
      postTitles.invalidation,
      () => pool.query(`INSERT INTO ${q(schema)}.posts VALUES (99, 99, 'marker')`),
      (eviction) => eviction.tags.includes('user:99'),
    );
    expect(await postTitles(9)).toEqual(['hello by ida', 'again by ida']);
    expect(await postTitles(2)).toEqual(['other by bob']);
    expect(runs).toBe(2);
    await pool.query(`UPDATE ${users} SET name = 'IDA' WHERE id = 9`);
    expect(await eventually(async () => (await postTitles(9))[0] === 'hello by IDA', 15_000, 25)).toBe(true);
    expect(await postTitles(2)).toEqual(['other by bob']);
    expect(runs).toBe(3);
  });

  it("tags evicted by a rule on the cache, not by the function's own: a run the change overlapped stores nothing", async () => {
    await setName(30, 'before');
    const rule = track(invalidateOnTableChange(cache, { table: 'users', tags: (row) => [`user:${row.id}`] }));
    await rule.ready;
    // The write above may still be on its way to the rule: its eviction must not count below.
    await drained(
      rule,
      () => setName(31, 'marker'),
      (eviction) => eviction.tags.includes('user:31'),
    );
    const load = userNameLoader();
    const hold = gate();
    let read: () => void = () => undefined;
    const hasRead = new Promise<void>((resolve) => {
      read = resolve;
    });
    const greeting = track(
      cached(
        async (id: number) => {
          const name = await load(id);
          read();
          await hold.opened;
          return name;
        },
        { cache, name: 'taggedElsewhere', key: (id) => String(id), tags: (id) => [`user:${id}`] },
      ),
    );
    await greeting.ready;
    const call = greeting(30);
    await hasRead;
    // The rule evicts the tag while nothing carries it yet: it deletes nothing.
    await drained(
      rule,
      () => setName(30, 'after'),
      (eviction) => eviction.tags.includes('user:30'),
    );
    hold.open();
    expect(await call).toBe('before');
    expect(await greeting(30)).toBe('after');
    expect(greeting.stats.refusedWrites).toBe(1);
  });

  it('refuses bad options and bad keys with typed errors, and never stores what JSON cannot hold', async () => {
    expect(() => cached(async () => 1, { cache })).toThrow(InvalidOptionError);
    expect(() => cached(async function named() {}, { cache, ttl: -1 })).toThrow(InvalidOptionError);
    expect(() => cached(async function named() {}, { cache, invalidateOn: [42 as never] })).toThrow(
      InvalidOptionError,
    );
    const errors: unknown[] = [];
    const weird = track(
      cached(async (kind: string) => (kind === 'big' ? 10n : undefined), {
        cache,
        name: 'weird',
        key: (kind) => (kind === 'nul' ? 'a\u0000b' : kind),
        invalidateOn: 'users',
        onError: (error) => errors.push(error),
      }),
    );
    await weird.ready;
    await expect(weird('nul')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await weird('big')).toBe(10n);
    expect(errors).toEqual([expect.objectContaining({ code: 'ERR_PGCACHE_INVALID_VALUE' })]);
    expect(await weird('undefined')).toBeUndefined();
    expect(await cache.adapter.readEntry('cached:weird', 'cached:weird:big')).toBeUndefined();
  });
});

describe('cached() without a database', () => {
  const unreachableCache = () =>
    new PostgresCache({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      schema,
      connectionTimeout: 500,
      reconnect: { initialDelay: 50, maxDelay: 200 },
    });

  it('answers around the cache while nothing can be trusted, and closes without waiting for an outage', async () => {
    const unreachable = unreachableCache();
    const errors: unknown[] = [];
    let runs = 0;
    const fn = cached(
      async (id: number) => {
        runs++;
        return id * 2;
      },
      { cache: unreachable, name: 'offline', invalidateOn: 'users', onError: (error) => errors.push(error) },
    );
    expect(await fn(21)).toBe(42);
    expect(await fn(21)).toBe(42);
    expect(runs).toBe(2);
    expect(fn.stats).toMatchObject({ bypassed: 2, hits: 0 });
    expect(await eventually(() => errors.length > 0, 15_000)).toBe(true);
    expect(errors[0]).toMatchObject({ code: 'ERR_PGCACHE_CONNECTION' });
    await fn.close();
    await unreachable.disconnect();
  });

  it('takes an onError that throws as reported: nothing crashes, and calls still answer', async () => {
    const unreachable = unreachableCache();
    const errors: unknown[] = [];
    const fn = cached(async (id: number) => id * 2, {
      cache: unreachable,
      name: 'offline-loud',
      onError: (error) => {
        errors.push(error);
        throw new Error('a broken alert hook');
      },
    });
    expect(await fn(21)).toBe(42);
    // Starting failed, and was reported to the handler that throws; the process goes on.
    expect(await eventually(() => errors.length > 0, 15_000)).toBe(true);
    expect(await fn(21)).toBe(42);
    expect(fn.stats.errors).toBe(errors.length);
    await fn.close();
    await unreachable.disconnect();
  });
});

describe('invalidateOnTableChange()', () => {
  it('deletes the mapped keys of a PostgresCache and of a Keyv over it; other keys stay', async () => {
    const keyv = new Keyv({ store: new PostgresCache({ pool, schema, namespace: 'kv', sweepInterval: 0 }) });
    const onCache = track(
      invalidateOnTableChange(cache, { table: 'users', keys: (row) => [`user:${row.id}`] }),
    );
    const onKeyv = track(
      invalidateOnTableChange(keyv, { table: 'users', keys: (row) => [`user:${row.id}`] }),
    );
    await Promise.all([onCache.ready, onKeyv.ready]);
    await cache.set('user:10', 'cached ten');
    await cache.set('user:11', 'cached eleven');
    await keyv.set('user:10', 'keyv ten');
    await keyv.set('user:11', 'keyv eleven');
    await setName(10, 'ten');
    expect(await eventually(async () => (await cache.get('user:10')) === undefined, 15_000)).toBe(true);
    expect(await eventually(async () => (await keyv.get('user:10')) === undefined, 15_000)).toBe(true);
    expect(await cache.get('user:11')).toBe('cached eleven');
    expect(await keyv.get('user:11')).toBe('keyv eleven');
    await keyv.disconnect();
  });

  it('a rule that reads a column the events do not carry evicts everything and says which column', async () => {
    const own = new PostgresCache({ pool, schema, namespace: 'columns', sweepInterval: 0 });
    const errors: Error[] = [];
    // The users watch sends its primary key (id) only: `name` is not in its events.
    const byName = track(
      invalidateOnTableChange(own, { table: 'users', keys: (row) => [`by-name:${row.name}`] }),
    );
    byName.on('error', (error) => errors.push(error));
    try {
      await byName.ready;
      await own.set('by-name:ann', 'cached');
      await own.set('unrelated', 'cached too');
      await setName(12, 'ann');
      expect(await eventually(async () => (await own.get('by-name:ann')) === undefined, 15_000)).toBe(true);
      expect(await own.get('unrelated')).toBeUndefined();
      expect(errors[0]).toBeInstanceOf(InvalidOptionError);
      expect(errors[0]?.message).toMatch(/column "name" of .*users.*key columns only \(id\)/);
    } finally {
      await own.disconnect();
    }
  });

  it('a rule may copy, clone or serialize the rows it gets, and reads their key columns as usual', async () => {
    const own = new PostgresCache({ pool, schema, namespace: 'copies', sweepInterval: 0 });
    const errors: Error[] = [];
    const seen: unknown[] = [];
    const copying = track(
      invalidateOnTableChange(own, {
        table: 'users',
        keys: (row) => {
          const clone = structuredClone(row);
          seen.push(clone, { ...row }, JSON.parse(JSON.stringify(row)), row instanceof Object);
          return [`user:${clone.id}`];
        },
      }),
    );
    copying.on('error', (error) => errors.push(error));
    try {
      await copying.ready;
      await own.set('user:13', 'cached');
      await own.set('unrelated', 'cached too');
      await setName(13, 'thirteen');
      expect(await eventually(async () => (await own.get('user:13')) === undefined, 15_000)).toBe(true);
      expect(await own.get('unrelated')).toBe('cached too');
      expect(errors).toEqual([]);
      expect(seen.slice(0, 4)).toEqual([{ id: 13 }, { id: 13 }, { id: 13 }, true]);
    } finally {
      await own.disconnect();
    }
  });

  it("a key column named __proto__ reads as a column, not as the row's prototype", async () => {
    const protos = `${q(schema)}.protos`;
    await pool.query(`CREATE TABLE ${protos} ("__proto__" text, id int, PRIMARY KEY ("__proto__", id))`);
    await installTableWatch(pool, { schema, table: 'protos', cacheSchema: schema });
    await pool.query(`INSERT INTO ${protos} VALUES ('a', 1)`);
    const own = new PostgresCache({ pool, schema, namespace: 'protos', sweepInterval: 0 });
    const errors: Error[] = [];
    const protoColumn = '__proto__';
    const rule = track(
      invalidateOnTableChange(own, { table: 'protos', keys: (row) => [`p:${row[protoColumn]}:${row.id}`] }),
    );
    rule.on('error', (error) => errors.push(error));
    try {
      await rule.ready;
      await own.set('p:a:1', 'cached');
      await own.set('unrelated', 'cached too');
      await pool.query(`DELETE FROM ${protos} WHERE id = 1`);
      expect(await eventually(async () => (await own.get('p:a:1')) === undefined, 15_000)).toBe(true);
      expect(await own.get('unrelated')).toBe('cached too');
      expect(errors).toEqual([]);
    } finally {
      await own.disconnect();
    }
  });

  it("deletes what a PostgresCache's wrap() stored under the key, with or without a namespace", async () => {
    const named = new PostgresCache({ pool, schema, namespace: 'app', sweepInterval: 0 });
    for (const [store, id] of [
      [cache, 40],
      [named, 41],
    ] as const) {
      const rule = track(
        invalidateOnTableChange(store, { table: 'users', keys: (row) => [`user:${row.id}`] }),
      );
      await rule.ready;
      // Its event handled before the first read: else it could drop what that read cached.
      const handled = rule.stats.evictions;
      await setName(id, 'before');
      expect(await evictions(rule, handled + 1)).toBe(true);
      const load = userNameLoader();
      const read = () => store.wrap(`user:${id}`, () => load(id), 60_000);
      expect(await read()).toBe('before');
      expect(await read()).toBe('before');
      expect(load.runs).toBe(1);
      await setName(id, 'after');
      expect(await eventually(async () => (await read()) === 'after', 15_000)).toBe(true);
      expect(load.runs).toBe(2);
    }
    await named.disconnect();
  });

  it('tags evict entries in every namespace; truncate flushes the namespace; a throwing mapper flushes too', async () => {
    const tags = new CacheTags(cache);
    const other = new PostgresCache({ pool, schema, namespace: 'other', sweepInterval: 0 });
    const errors: unknown[] = [];
    const byTag = track(
      invalidateOnTableChange(cache, { table: 'posts', tags: (row) => [`post:${row.id}`] }),
    );
    const picky = track(
      invalidateOnTableChange(other, {
        table: 'users',
        keys: (row) => {
          if (row.id === 13) throw new Error('mapper bug');
          return [`user:${row.id}`];
        },
      }),
    );
    picky.on('error', (error) => errors.push(error));
    await Promise.all([byTag.ready, picky.ready]);
    await tags.set('post-page:20', 'page', { tags: ['post:20'] });
    await tags.set('post-card:20', 'card', { tags: ['post:20'], namespace: 'other' });
    await tags.set('post-page:21', 'page', { tags: ['post:21'] });
    expect(await other.get('post-card:20')).toBe('card');
    await pool.query(`INSERT INTO ${q(schema)}.posts VALUES (20, 9, 'tagged')`);
    expect(await eventually(async () => (await other.get('post-card:20')) === undefined, 15_000)).toBe(true);
    expect(await cache.get('post-page:20')).toBeUndefined();
    expect(await cache.get('post-page:21')).toBe('page');

    await other.set('user:12', 'x');
    await other.set('unrelated', 'y');
    await setName(13, 'thirteen');
    // The flush is counted once it is done: both namespaces of `other` (plain and wrap) cleared.
    expect(await eventually(() => picky.stats.flushes === 1, 15_000)).toBe(true);
    expect(await other.get('unrelated')).toBeUndefined();
    expect(errors).toEqual([expect.objectContaining({ message: expect.stringContaining('mapper bug') })]);

    await cache.set('survivor', 'z');
    await pool.query(`TRUNCATE ${q(schema)}.posts`);
    expect(await eventually(() => byTag.stats.flushes === 1, 15_000)).toBe(true);
    expect(await cache.get('survivor')).toBeUndefined();
    await other.disconnect();
  });

  it("CacheTags.evict() drops what it deleted from its own process's L1 before it returns", async () => {
    // No change events at all: only the eviction itself can take the entry out of this L1.
    const quiet = new PostgresCache({
      pool,
      schema,
      namespace: 'quiet',
      notifications: false,
      l1: { ttl: 60_000 },
      sweepInterval: 0,
    });
    const tags = new CacheTags(quiet);
    await tags.set('page:1', 'v', { tags: ['quiet-tag'] });
    expect(await quiet.get('page:1')).toBe('v');
    expect(await quiet.get('page:1')).toBe('v');
    expect(quiet.stats.l1.hits).toBe(1);
    expect(await tags.evict(['quiet-tag'])).toBe(1);
    expect(await quiet.get('page:1')).toBeUndefined();
    await quiet.disconnect();
  });

  it('an entry tagged again with a longer ttl keeps its tag for as long as it lives', async () => {
    const own = new PostgresCache({ pool, schema, namespace: 'retagged', sweepInterval: 0 });
    const tags = new CacheTags(own);
    try {
      await tags.set('page', 'short', { tags: ['retagged-tag'], ttl: 200 });
      await tags.set('page', 'long', { tags: ['retagged-tag'], ttl: 60_000 });
      await sleep(400);
      // Pruning drops the tag rows of expired entries only: this entry still lives.
      await tags.prune();
      expect(await own.get('page')).toBe('long');
      expect(await tags.evict(['retagged-tag'])).toBe(1);
      expect(await own.get('page')).toBeUndefined();
    } finally {
      await own.disconnect();
    }
  });

  it('a bulk change of more rows than one delete statement takes evicts every dependent key', async () => {
    const rows = 2500;
    await pool.query(`CREATE TABLE ${q(schema)}.bulk (id int PRIMARY KEY, n int)`);
    await installTableWatch(pool, { schema, table: 'bulk', cacheSchema: schema });
    const own = new PostgresCache({ pool, schema, namespace: 'bulk', sweepInterval: 0 });
    const rule = invalidateOnTableChange(own, {
      table: 'bulk',
      keys: (row) => [`row:${row.id}`],
      // One eviction for the whole UPDATE: a window as large as it, and no time limit within the test.
      strategy: windowed({ maxEvents: rows, maxWait: 600_000 }),
    });
    try {
      await rule.ready;
      await pool.query(`INSERT INTO ${q(schema)}.bulk SELECT g, 0 FROM generate_series(1, ${rows}) AS g`);
      expect(await eventually(() => rule.stats.evictions === 1, 15_000)).toBe(true);
      const ids = Array.from({ length: rows }, (_, index) => index + 1);
      await own.setMany(ids.map((id) => ({ key: `row:${id}`, value: 'cached' })));
      await pool.query(`UPDATE ${q(schema)}.bulk SET n = 1`);
      expect(await eventually(() => rule.stats.evictions === 2, 15_000)).toBe(true);
      expect(rule.stats.keys).toBe(2 * rows);
      const left = await pool.query(
        `SELECT key FROM ${own.adapter.names.entries} WHERE namespace = 'bulk' ORDER BY key`,
      );
      expect(left.rows).toEqual([]);
    } finally {
      await rule.close();
      await own.disconnect();
    }
  });

  it('windowed: events wait for the window to fill, then go in one eviction', async () => {
    const rule = track(
      invalidateOnTableChange(cache, {
        table: 'users',
        keys: (row) => [`window:${row.id}`],
        // maxWait far beyond the test: only the count can close this window.
        strategy: windowed({ maxEvents: 3, maxWait: 600_000 }),
      }),
    );
    await rule.ready;
    for (const id of [30, 31, 32]) await cache.set(`window:${id}`, 'held');
    await setName(30, 'a');
    await setName(31, 'b');
    expect(await eventually(() => rule.stats.events === 2, 15_000)).toBe(true);
    expect(rule.stats.evictions).toBe(0);
    expect(await cache.get('window:30')).toBe('held');
    await setName(32, 'c');
    expect(await eventually(() => rule.stats.evictions === 1, 15_000)).toBe(true);
    expect(rule.stats.keys).toBe(3);
    for (const id of [30, 31, 32]) expect(await cache.get(`window:${id}`)).toBeUndefined();
  });

  it('refuses a target it cannot evict from', () => {
    expect(() =>
      invalidateOnTableChange({ deleteMany: async () => true } as never, { table: 'users' }),
    ).toThrow(InvalidOptionError);
  });
});

describe('a cache in a schema with a long name', () => {
  // 60 characters: `<schema>_pgcache_table_changes` would pass PostgreSQL's 63-byte limit.
  const longSchema = `${uniqueSchema('long')}_${'x'.repeat(40)}`.slice(0, 60);

  afterAll(() => dropSchema(longSchema));

  it('gets a shortened table-change channel, and cached() rules work with it', async () => {
    const channel = tableChangeChannel({ cacheSchema: longSchema });
    expect(channel.length).toBeLessThanOrEqual(63);
    expect(channel).not.toBe(tableChangeChannel({ cacheSchema: `${longSchema.slice(0, 59)}y` }));
    await pool.query(`CREATE SCHEMA ${q(longSchema)}`);
    await pool.query(`CREATE TABLE ${q(longSchema)}.users (id int PRIMARY KEY, name text)`);
    await pool.query(`INSERT INTO ${q(longSchema)}.users VALUES (1, 'first')`);
    const installed = await installTableWatch(pool, {
      schema: longSchema,
      table: 'users',
      cacheSchema: longSchema,
    });
    expect(installed.channel).toBe(channel);
    const longCache = new PostgresCache({
      connectionString: databaseUrl(),
      schema: longSchema,
      sweepInterval: 0,
    });
    longCache.on('error', () => undefined);
    const name = cached(
      async (id: number) =>
        (await pool.query(`SELECT name FROM ${q(longSchema)}.users WHERE id = $1`, [id])).rows[0]
          ?.name as string,
      {
        cache: longCache,
        name: 'longName',
        key: String,
        invalidateOn: { table: 'users', keys: (row) => [String(row.id)] },
      },
    );
    try {
      await name.ready;
      expect(name.invalidation?.trusted).toBe(true);
      expect(await name(1)).toBe('first');
      await pool.query(`UPDATE ${q(longSchema)}.users SET name = 'second' WHERE id = 1`);
      expect(await eventually(async () => (await name(1)) === 'second', 15_000, 25)).toBe(true);
    } finally {
      await name.close();
      await longCache.disconnect();
    }
  });
});
