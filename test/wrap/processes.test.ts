import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCache } from '../../src/index.js';
import { finished, type ScriptResult, spawnScript } from '../support/child.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';
import { lockHolders, lockOf } from './support.js';

const schema = uniqueSchema('wrap_processes');
const pool = adminPool();
const PROCESSES = 4;
const CALLERS = 50;
let startLock = 0;

interface Report {
  pid: number;
  fulfilled: number;
  rejected: number;
  values: string[];
  errors: string[];
}

/** Resolves when the child prints `line`. */
function printed(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (text) => {
      if (text === line) {
        lines.close();
        resolve();
      }
    });
  });
}

function report(result: ScriptResult): Report {
  const line = result.stdout.split('\n').find((text) => text.startsWith('{'));
  if (!line) throw new Error(`no report (exit ${result.code} ${result.signal}): ${result.stderr}`);
  return JSON.parse(line) as Report;
}

async function runs(): Promise<Array<{ id: number; pid: number }>> {
  return (await pool.query(`SELECT id, pid FROM "${schema}".wrap_runs ORDER BY id`)).rows;
}

/** Starts the processes, waits until every one is ready, then lets them all go at once. */
async function stampede(
  key: string,
  behaviour: string,
  lockMode: string,
  meanwhile?: (children: ChildProcess[]) => Promise<void>,
) {
  await pool.query(`TRUNCATE "${schema}".wrap_runs RESTART IDENTITY`);
  const starter = new pg.Client({ connectionString: databaseUrl() });
  await starter.connect();
  try {
    await starter.query('SELECT pg_advisory_lock($1)', [startLock]);
    const children = Array.from({ length: PROCESSES }, () =>
      spawnScript('wrap-stampede.ts', [schema, key, behaviour, lockMode, String(startLock)]),
    );
    const results = children.map((child) => finished(child, 120_000));
    await Promise.all(children.map((child) => printed(child, 'ready')));
    await starter.query('SELECT pg_advisory_unlock($1)', [startLock]);
    await meanwhile?.(children);
    return await Promise.all(results);
  } finally {
    await starter.end();
  }
}

beforeAll(async () => {
  await PostgresCache.initDb({ connectionString: databaseUrl(), schema });
  await pool.query(`CREATE TABLE "${schema}".wrap_runs (id serial PRIMARY KEY, pid int NOT NULL)`);
  startLock = Math.floor(Math.random() * 2 ** 30) + 1;
});
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe.each(['session', 'transaction'] as const)(
  'four processes, fifty callers each, one cold key (%s locks)',
  (lockMode) => {
    it('runs the loader exactly once in the cluster, and every caller gets its value', async () => {
      const key = `cold-${lockMode}`;
      const results = await stampede(key, 'ok', lockMode);
      const reports = results.map(report);
      const loaderRuns = await runs();
      expect(loaderRuns).toHaveLength(1);
      const expected = JSON.stringify({ run: 1, pid: loaderRuns[0]?.pid });
      for (const { fulfilled, rejected, values } of reports) {
        expect({ fulfilled, rejected, values }).toEqual({
          fulfilled: CALLERS,
          rejected: 0,
          values: [expected],
        });
      }
      expect(results.map((result) => result.code)).toEqual(Array(PROCESSES).fill(0));
      expect(await lockHolders(pool, lockOf(schema, 'stampede', key))).toBe(0);
    }, 180_000);
  },
);

describe('four processes, fifty callers each, one cold key', () => {
  it('with a loader that throws: every caller gets an error, nothing is cached, and the next call succeeds', async () => {
    const key = 'cold-throws';
    const reports = (await stampede(key, 'throw', 'session')).map(report);
    for (const { fulfilled, rejected, errors } of reports) {
      expect({ fulfilled, rejected }).toEqual({ fulfilled: 0, rejected: CALLERS });
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^Error: loader failed in \d+$/);
    }
    // One run at a time under the lock, and at most one per process: a process's callers share its error.
    const loaderRuns = await runs();
    expect(loaderRuns.length).toBeGreaterThanOrEqual(1);
    expect(loaderRuns.length).toBeLessThanOrEqual(PROCESSES);
    expect(new Set(loaderRuns.map((run) => run.pid)).size).toBe(loaderRuns.length);
    const { rows } = await pool.query(
      `SELECT 1 FROM "${schema}".pgcache_entries WHERE namespace = 'stampede' AND key = $1`,
      [`stampede:${key}`],
    );
    expect(rows).toEqual([]);
    expect(await lockHolders(pool, lockOf(schema, 'stampede', key))).toBe(0);

    const cache = new PostgresCache({
      connectionString: databaseUrl(),
      schema,
      sweepInterval: 0,
      namespace: 'stampede',
    });
    try {
      expect(await cache.wrap(key, async () => 'recovered')).toBe('recovered');
    } finally {
      await cache.disconnect();
    }
  }, 180_000);

  it('with the holder killed (SIGKILL) mid-loader: the others go on within lockTimeout, and the loader runs once more', async () => {
    const key = 'cold-killed';
    let killedPid = 0;
    const results = await stampede(key, 'hang-first', 'session', async (children) => {
      const holder = await Promise.race(children.map((child) => printed(child, 'hanging').then(() => child)));
      killedPid = holder.pid ?? 0;
      holder.kill('SIGKILL');
    });
    const killed = results.filter((result) => result.signal === 'SIGKILL');
    expect(killed).toHaveLength(1);
    const loaderRuns = await runs();
    expect(loaderRuns).toHaveLength(2);
    expect(loaderRuns[0]?.pid).toBe(killedPid);
    // The survivors waited with onLockTimeout 'throw': any that had not got through in time would have failed.
    const expected = JSON.stringify({ run: 2, pid: loaderRuns[1]?.pid });
    const survivors = results.filter((result) => result.signal === null).map(report);
    expect(survivors).toHaveLength(PROCESSES - 1);
    for (const { fulfilled, rejected, values, errors } of survivors) {
      expect({ fulfilled, rejected, values, errors }).toEqual({
        fulfilled: CALLERS,
        rejected: 0,
        values: [expected],
        errors: [],
      });
    }
    expect(await lockHolders(pool, lockOf(schema, 'stampede', key))).toBe(0);
  }, 180_000);
});
