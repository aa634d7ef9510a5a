import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installTableWatch } from '../../src/index.js';
import { adminPool, dropSchema, eventually, uniqueSchema } from '../support/database.js';
import { killListener, q } from './support.js';
import { startWatchWorkers, type WatchWorker } from './worker.js';

const schema = uniqueSchema('tw_processes');
const pool = adminPool();
const users = `${q(schema)}.users`;
const orders = `${q(schema)}.orders`;
let workers: WatchWorker[] = [];

type Answer = { value: unknown; loads: number };
type Seen = { a: string[]; b: string[]; inserts: string[] };
type Stats = {
  watcher: { reconnects: number; ignored: number };
  userKeys: { flushes: number };
  deletedOnly: { evictions: number; events: number };
  trusted: boolean;
  listenerPid: number;
};

const everyWorker = <T>(cmd: string, args: Record<string, unknown> = {}) =>
  Promise.all(workers.map((worker) => worker.call<T>(cmd, args)));

/** Polls (generous deadline) until every process gives `expected` for the call. */
const everyProcessSees = (cmd: string, args: Record<string, unknown>, expected: unknown) =>
  eventually(
    async () =>
      (await everyWorker<Answer | unknown>(cmd, args)).every((answer) => value(answer) === expected),
    30_000,
    25,
  );

const value = (answer: unknown) =>
  typeof answer === 'object' && answer !== null && 'value' in answer ? (answer as Answer).value : answer;

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
  await pool.query(`CREATE TABLE ${users} (id int PRIMARY KEY, name text)`);
  await pool.query(`CREATE TABLE ${orders} (id int PRIMARY KEY, amount int)`);
  await pool.query(`INSERT INTO ${users} SELECT g, 'v1-' || g FROM generate_series(1, 5) g`);
  await pool.query(`INSERT INTO ${orders} VALUES (1, 10), (2, 20)`);
  await installTableWatch(pool, { schema, table: 'users', cacheSchema: schema });
  await installTableWatch(pool, { schema, table: 'orders', cacheSchema: schema });
  workers = await startWatchWorkers(schema, 3);
}, 90_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await dropSchema(schema);
  await pool.end();
});

describe('table-change invalidation across processes', () => {
  it('an UPDATE over a plain connection evicts the dependent entries in every process, and only those', async () => {
    // Every process holds both users' results and both plain entries, in L1 as well.
    await workers[0]?.call('set', { key: 'user:1', value: 'cached one' });
    await workers[0]?.call('set', { key: 'user:2', value: 'cached two' });
    for (const id of [1, 2]) {
      expect((await everyWorker<Answer>('userName', { arg: id })).map(value)).toEqual(
        Array(3).fill(`v1-${id}`),
      );
      expect(await everyWorker('get', { key: `user:${id}` })).toEqual(
        Array(3).fill(`cached ${['', 'one', 'two'][id]}`),
      );
    }
    expect(await everyWorker('inL1', { key: 'user:1' })).toEqual([true, true, true]);
    const loadsBefore = (await everyWorker<Answer>('userName', { arg: 2 })).map((answer) => answer.loads);

    await pool.query(`UPDATE ${users} SET name = 'v2-1' WHERE id = 1`);

    expect(await everyProcessSees('userName', { arg: 1 }, 'v2-1')).toBe(true);
    expect(await everyProcessSees('inL1', { key: 'user:1' }, false)).toBe(true);
    expect(await everyWorker('get', { key: 'user:1' })).toEqual([null, null, null]);
    // The unchanged row's result and entry stay: in L1, and without a new load.
    expect(await everyWorker('inL1', { key: 'user:2' })).toEqual([true, true, true]);
    const after = await everyWorker<Answer>('userName', { arg: 2 });
    expect(after.map(value)).toEqual(Array(3).fill('v1-2'));
    expect(after.map((answer) => answer.loads)).toEqual(loadsBefore);
    // Two subscribers in each process saw the same events.
    for (const seen of await everyWorker<Seen>('events')) {
      expect(seen.a).toContain('users:update:{"id":1}');
      expect(seen.b).toEqual(seen.a);
    }
  });

  it('TRUNCATE evicts everything that depends on the table in every process, and nothing else', async () => {
    for (const id of [1, 2]) {
      expect((await everyWorker<Answer>('orderAmount', { arg: id })).map(value)).toEqual(
        Array(3).fill(id * 10),
      );
    }
    const userLoads = (await everyWorker<Answer>('userName', { arg: 2 })).map((answer) => answer.loads);
    await pool.query(`TRUNCATE ${orders}`);
    expect(await everyProcessSees('orderAmount', { arg: 1 }, null)).toBe(true);
    expect(await everyProcessSees('orderAmount', { arg: 2 }, null)).toBe(true);
    const users2 = await everyWorker<Answer>('userName', { arg: 2 });
    expect(users2.map((answer) => answer.loads)).toEqual(userLoads);
    for (const seen of await everyWorker<Seen>('events')) expect(seen.a).toContain('orders:truncate:null');
  });

  it('insert, update and delete filters: a delete-only rule ignores inserts and updates in every process', async () => {
    await workers[0]?.call('set', { key: 'gone:3', value: 'three' });
    await workers[0]?.call('set', { key: 'gone:4', value: 'four' });
    await workers[0]?.call('set', { key: 'gone:6', value: 'six' });
    expect(await everyWorker('get', { key: 'gone:3' })).toEqual(['three', 'three', 'three']);
    const before = await everyWorker<Stats>('stats');
    await pool.query(`INSERT INTO ${users} VALUES (6, 'v1-6')`);
    await pool.query(`UPDATE ${users} SET name = 'v2-3' WHERE id = 3`);
    await pool.query(`DELETE FROM ${users} WHERE id = 4`);
    // Events arrive in commit order: once the delete is evicted, the insert and the update were seen.
    expect(await everyProcessSees('get', { key: 'gone:4' }, null)).toBe(true);
    expect(
      await eventually(async () => {
        const stats = await everyWorker<Stats>('stats');
        return stats.every(
          (each, index) => each.deletedOnly.evictions > (before[index]?.deletedOnly.evictions ?? 0),
        );
      }, 30_000),
    ).toBe(true);
    expect(await everyWorker('get', { key: 'gone:3' })).toEqual(['three', 'three', 'three']);
    expect(await everyWorker('get', { key: 'gone:6' })).toEqual(['six', 'six', 'six']);
    for (const [index, stats] of (await everyWorker<Stats>('stats')).entries()) {
      expect(stats.deletedOnly.events).toBe((before[index]?.deletedOnly.events ?? 0) + 1);
    }
    for (const seen of await everyWorker<Seen>('events')) {
      expect(seen.inserts).toEqual(seen.a.filter((event) => event.includes(':insert:')));
      expect(seen.inserts).toContain('users:insert:{"id":6}');
      expect(seen.a).toEqual(expect.arrayContaining(['users:update:{"id":3}', 'users:delete:{"id":4}']));
    }
  });

  it("another process's invalidate() stops a run that read the row before it from storing its result", async () => {
    await pool.query(`INSERT INTO ${users} VALUES (40, 'before')`);
    const [holder, invalidator, reader] = workers;
    // The first process reads 'before', then is held before it stores it.
    expect(await holder?.call('startPlain', { arg: 40 })).toBe(true);
    const heard = (await holder?.call<number>('plainDeletesHeard')) ?? 0;
    // The application changes the row and invalidates its result, from another process.
    await pool.query(`UPDATE ${users} SET name = 'after' WHERE id = 40`);
    expect(await invalidator?.call('invalidatePlain', { arg: 40 })).toBe(true);
    expect(
      await eventually(async () => (await holder?.call<number>('plainDeletesHeard')) === heard + 1),
    ).toBe(true);
    // The held run answers its own callers with what it read, and stores nothing.
    expect(await holder?.call('openPlain')).toEqual({ value: 'before', refusedWrites: 1 });
    for (const worker of [reader, invalidator, holder]) {
      expect(await worker?.call<Answer>('plainName', { arg: 40 })).toMatchObject({ value: 'after' });
    }
  });

  it('listener killed under load: what depends on table events is treated as stale in every process', async () => {
    for (const id of [1, 2, 3, 5]) await everyWorker('userName', { arg: id });
    await workers[0]?.call('set', { key: 'user:5', value: 'cached five' });
    expect(await everyWorker('get', { key: 'user:5' })).toEqual(Array(3).fill('cached five'));
    await everyWorker('startLoad');
    try {
      // A change no trigger reports (its trigger off for this one transaction): exactly what a process misses
      // while its listener is down.
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`ALTER TABLE ${users} DISABLE TRIGGER pgcache_watch`);
        await client.query(`UPDATE ${users} SET name = 'v3-' || id`);
        await client.query(`ALTER TABLE ${users} ENABLE ALWAYS TRIGGER pgcache_watch`);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      // Nothing was told: every process still serves the old name (the test could fail here).
      expect((await everyWorker<Answer>('userName', { arg: 5 })).map(value)).toEqual(Array(3).fill('v1-5'));

      const before = await everyWorker<Stats>('stats');
      for (const stats of before) expect(await killListener(pool, stats.listenerPid)).toBe(1);

      for (const id of [1, 2, 3, 5])
        expect(await everyProcessSees('userName', { arg: id }, `v3-${id}`)).toBe(true);
      // The plain entry that stood for a row was flushed too, though no event named it.
      expect(await everyProcessSees('get', { key: 'user:5' }, null)).toBe(true);
      // Each process counts its own flush once its eviction is done, which may come after another process's
      // flush already emptied the shared table.
      const recovered = async () =>
        (await everyWorker<Stats>('stats')).every(
          (stats, index) =>
            stats.watcher.reconnects > (before[index]?.watcher.reconnects ?? 0) &&
            stats.userKeys.flushes > (before[index]?.userKeys.flushes ?? 0) &&
            stats.trusted === true,
        );
      expect(await eventually(recovered)).toBe(true);
    } finally {
      const loads = await everyWorker<{ calls: number; errors: number; firstError?: string }>('stopLoad');
      for (const load of loads) {
        expect(load.errors, load.firstError).toBe(0);
        expect(load.calls).toBeGreaterThan(0);
      }
    }
    // Events flow again: a plain UPDATE reaches every process.
    await pool.query(`UPDATE ${users} SET name = 'v4-1' WHERE id = 1`);
    expect(await everyProcessSees('userName', { arg: 1 }, 'v4-1')).toBe(true);
  }, 120_000);
});
