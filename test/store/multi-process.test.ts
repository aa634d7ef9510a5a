import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCache } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, sleep, uniqueSchema } from '../support/database.js';
import { type CacheWorker, startWorkers } from '../support/worker-client.js';

const schema = uniqueSchema('multi_process');
const pool = adminPool();
let workers: CacheWorker[] = [];

type Stats = PostgresCache['stats'];
type L1Row = { namespace: string; key?: string; version: number; value: string };

beforeAll(async () => {
  await PostgresCache.initDb({ connectionString: databaseUrl(), schema });
  workers = await startWorkers(schema, 3);
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await dropSchema(schema);
  await pool.end();
});

const allSee = (key: string, expected: unknown, namespace = 'app') =>
  eventually(async () => {
    const seen = await Promise.all(workers.map((worker) => worker.call('get', { key, namespace })));
    return seen.every((value) => value === expected);
  }, 10_000);

/** Every L1 entry matches its row in the table: same version, same value; none for a missing row. */
async function l1MatchesTable(worker: CacheWorker): Promise<string[]> {
  const held = await worker.call<L1Row[]>('l1');
  const problems: string[] = [];
  for (const entry of held) {
    const { rows } = await pool.query(
      `SELECT value, version FROM "${schema}".pgcache_entries WHERE namespace = $1 AND key = $2`,
      [entry.namespace, entry.key],
    );
    const row = rows[0];
    if (!row) problems.push(`${entry.key}: in L1 at v${entry.version}, not in the table`);
    else if (Number(row.version) !== entry.version || row.value !== entry.value) {
      problems.push(`${entry.key}: L1 v${entry.version}, table v${row.version}`);
    }
  }
  return problems;
}

describe('a change on one process is seen by the others', () => {
  it('set: readers that hold the old value in L1 get the new one', async () => {
    const [writer, ...readers] = workers as [CacheWorker, ...CacheWorker[]];
    await writer.call('set', { key: 'k', value: 'v1' });
    for (const reader of readers) {
      expect(await reader.call('get', { key: 'k' })).toBe('v1');
      expect(await reader.call('get', { key: 'k' })).toBe('v1');
    }
    const hitsBefore = await Promise.all(readers.map((reader) => reader.call<Stats>('stats')));
    expect(hitsBefore.every((stats) => stats.l1.hits >= 1)).toBe(true);

    await writer.call('set', { key: 'k', value: 'v2' });
    expect(await allSee('k', 'v2')).toBe(true);
    const after = await Promise.all(readers.map((reader) => reader.call<Stats>('stats')));
    expect(after.every((stats) => stats.evictions.event >= 1)).toBe(true);
  });

  it('delete', async () => {
    await workers[0]?.call('set', { key: 'gone', value: 'here' });
    expect(await allSee('gone', 'here')).toBe(true);
    expect(await workers[1]?.call('delete', { key: 'gone' })).toBe(true);
    expect(await allSee('gone', null)).toBe(true);
  });

  it('clear empties one namespace everywhere and leaves the others', async () => {
    for (const key of ['a', 'b', 'c']) {
      await workers[0]?.call('set', { key, value: key, namespace: 'cleared' });
      await workers[0]?.call('set', { key, value: key, namespace: 'kept' });
    }
    expect(await allSee('a', 'a', 'cleared')).toBe(true);
    expect(await allSee('a', 'a', 'kept')).toBe(true);
    await workers[2]?.call('clear', { namespace: 'cleared' });
    for (const key of ['a', 'b', 'c']) {
      expect(await allSee(key, null, 'cleared')).toBe(true);
      expect(await allSee(key, key, 'kept')).toBe(true);
    }
  });
});

describe('races and faults', () => {
  it('after concurrent fills, reads and writes across processes stop, every L1 agrees with the table', async () => {
    await Promise.all(workers.map((worker) => worker.call('churn', { keys: 5, writeShare: 0.3 })));
    await sleep(3000);
    const counts = await Promise.all(workers.map((worker) => worker.call<{ writes: number }>('stopChurn')));
    expect(counts.every((count) => count.writes > 10)).toBe(true);
    // Events of the last writes are in flight for a moment.
    const converged = await eventually(
      async () => {
        const problems = await Promise.all(workers.map(l1MatchesTable));
        return problems.every((list) => list.length === 0);
      },
      5000,
      100,
    );
    const problems = (await Promise.all(workers.map(l1MatchesTable))).flat();
    expect(problems).toEqual([]);
    expect(converged).toBe(true);
    const held = await Promise.all(workers.map((worker) => worker.call<L1Row[]>('l1')));
    expect(held.flat().length).toBeGreaterThan(0);
  }, 30_000);

  it('a killed LISTEN connection under load: once coherent again, no process reads a stale value', async () => {
    const [writer, ...readers] = workers as [CacheWorker, ...CacheWorker[]];
    await writer.call('set', { key: 'x', value: 'before' });
    expect(await allSee('x', 'before')).toBe(true);
    await Promise.all(readers.map((worker) => worker.call('churn', { keys: 5, writeShare: 0.1 })));

    for (let round = 0; round < 3; round++) {
      const stats = await Promise.all(workers.map((worker) => worker.call<Stats>('stats')));
      const pids = stats.map((s) => s.listener.backendPid).filter((pid) => pid !== undefined);
      expect(pids.length).toBe(workers.length);
      await pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
      // Written while the readers' listeners are down (or just back): the event may never reach them.
      await writer.call('set', { key: 'x', value: `during-${round}` });
      const recovered = await eventually(
        async () => {
          const now = await Promise.all(readers.map((worker) => worker.call<Stats>('stats')));
          return now.every(
            (s, i) =>
              s.listener.connected && s.listener.reconnects > (stats[i + 1]?.listener.reconnects ?? 0),
          );
        },
        10_000,
        20,
      );
      expect(recovered).toBe(true);
      for (const reader of readers) {
        expect(await reader.call('get', { key: 'x' })).toBe(`during-${round}`);
      }
    }
    await Promise.all(readers.map((worker) => worker.call('stopChurn')));
  }, 60_000);
});
