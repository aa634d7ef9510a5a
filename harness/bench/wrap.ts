/**
 * wrap() benchmark (issue 4), one run:
 *
 *   npm run bench:wrap [-- --rounds N] [--ops N] [--concurrency N] [--quick] [--json FILE]
 *
 * 1. Cold-key stampede: four real processes, fifty concurrent wrap() calls each on one cold key whose
 *    loader takes LOADER_MS. Loader executions across the four processes and wall time (first caller
 *    started to last caller answered), for PostgresCache.wrap() and for cache-manager 7's wrap() over
 *    @keyv/postgres and over @keyv/redis. A fresh key every round; the median round is reported.
 * 2. Warm wrap() throughput in one process: PostgresCache.wrap() answering from L1, against
 *    cache-manager's wrap() over its in-memory store (createCache() with no stores).
 *
 * Without DATABASE_URL an embedded PostgreSQL is started. Redis is expected at 127.0.0.1:6379; without
 * it the @keyv/redis row is left out.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import { PostgresCache } from '../../src/index.js';
import { parseBenchArgs } from './lib/args.js';
import { type BenchDatabase, openBenchDatabase } from './lib/database.js';
import { type LoadResult, medianOfRounds, runLoad } from './lib/load.js';
import { describeMachine } from './lib/machine.js';
import { REDIS_URL, redisReachable } from './lib/redis.js';
import { printReport, type ResultRow, type Target, writeJsonReport } from './lib/report.js';
import { makeValue } from './lib/values.js';
import {
  PEER_NAMESPACE,
  PEER_TABLE,
  type RoundCommand,
  type RoundResult,
  STAMPEDE_SCHEMA,
  type StampedeSubject,
} from './wrap-protocol.js';

const args = parseBenchArgs({ ops: 500_000, quickOps: 100_000, rounds: 5, quickRounds: 3 });
const PROCESSES = 4;
const CALLERS = 50;
const LOADER_MS = 100;
const WARM_KEYS = 1000;
const WARM_SCHEMA = 'bench_wrap_warm';
const TTL_MS = 600_000;

const SUBJECTS: Record<StampedeSubject, string> = {
  ours: 'ours: PostgresCache.wrap()',
  'keyv-postgres': 'cache-manager wrap() over @keyv/postgres',
  'keyv-redis': 'cache-manager wrap() over @keyv/redis',
};

// ---- cold-key stampede ---------------------------------------------------------------------

interface StampedeSummary {
  subject: string;
  rounds: number;
  /** Loader runs across the processes, per round. */
  loads: number[];
  wallMs: number[];
  medianWallMs: number;
  errors: number;
  firstError?: string | undefined;
}

function startWorker(subject: StampedeSubject, url: string): ChildProcess {
  const script = fileURLToPath(new URL('./wrap-worker.ts', import.meta.url));
  return fork(script, [subject, url, REDIS_URL], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`a stampede worker exited (${code})`));
    child.once('message', (message) => {
      child.off('exit', onExit);
      resolve(message as T);
    });
    child.once('exit', onExit);
  });
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.connected) child.send({ cmd: 'stop' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function stampede(subject: StampedeSubject, url: string, runId: string): Promise<StampedeSummary> {
  const workers = Array.from({ length: PROCESSES }, () => startWorker(subject, url));
  try {
    await Promise.all(workers.map((worker) => nextMessage(worker)));
    const loads: number[] = [];
    const wallMs: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    for (let round = 0; round < args.rounds; round++) {
      const command: RoundCommand = {
        cmd: 'round',
        key: `cold:${runId}:${round}`,
        callers: CALLERS,
        loaderMs: LOADER_MS,
      };
      const answers = workers.map((worker) => nextMessage<RoundResult>(worker));
      for (const worker of workers) worker.send(command);
      const results = await Promise.all(answers);
      loads.push(results.reduce((sum, result) => sum + result.loads, 0));
      wallMs.push(
        Math.max(...results.map((result) => result.finishedAt)) -
          Math.min(...results.map((result) => result.startedAt)),
      );
      errors += results.reduce((sum, result) => sum + result.errors, 0);
      firstError ??= results.find((result) => result.firstError)?.firstError;
    }
    return {
      subject: SUBJECTS[subject],
      rounds: args.rounds,
      loads,
      wallMs,
      medianWallMs: median(wallMs),
      errors,
      firstError,
    };
  } finally {
    await Promise.all(workers.map(stopWorker));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

function printStampede(rows: StampedeSummary[]): void {
  const headers = [
    'subject',
    'loader runs/round',
    'expected',
    'wall ms (median)',
    'wall ms (range)',
    'errors',
  ];
  const table = rows.map((row) => [
    row.subject,
    `${Math.min(...row.loads)}..${Math.max(...row.loads)}`,
    row.subject === SUBJECTS.ours ? '1' : `${PROCESSES} (one per process)`,
    row.medianWallMs.toFixed(0),
    `${Math.min(...row.wallMs).toFixed(0)}..${Math.max(...row.wallMs).toFixed(0)}`,
    String(row.errors),
  ]);
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...table.map((cells) => (cells[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ');
  process.stdout.write(`${line(headers)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}\n`);
  for (const cells of table) process.stdout.write(`${line(cells)}\n`);
  for (const row of rows)
    if (row.firstError) process.stdout.write(`  ${row.subject}: first error: ${row.firstError}\n`);
}

// ---- warm wrap() throughput ------------------------------------------------------------------

type WarmWrap = (key: string, loader: () => Promise<unknown>) => Promise<unknown>;

async function warm(db: BenchDatabase): Promise<ResultRow[]> {
  const value = makeValue(1);
  const loader = async () => value;
  const keys = Array.from({ length: WARM_KEYS }, (_, index) => `user:${index}`);
  await PostgresCache.initDb({ connectionString: db.url, schema: WARM_SCHEMA });
  const cache = new PostgresCache({ connectionString: db.url, schema: WARM_SCHEMA, sweepInterval: 0 });
  await cache.init();
  const memory = createCache();
  const overOurStore = createCache({ stores: [new Keyv({ store: cache, namespace: 'via-keyv' })] });
  const subjects: Array<[string, WarmWrap]> = [
    ['ours: PostgresCache.wrap() (L1 hit)', (key, load) => cache.wrap(key, load, TTL_MS)],
    ['cache-manager wrap() in-memory', (key, load) => memory.wrap(key, load, TTL_MS)],
    ['cache-manager wrap() over Keyv(PostgresCache)', (key, load) => overOurStore.wrap(key, load, TTL_MS)],
  ];
  for (const [, wrap] of subjects) for (const key of keys) await wrap(key, loader);
  const results = new Map<string, LoadResult[]>(subjects.map(([name]) => [name, []]));
  for (let round = 0; round < args.rounds; round++) {
    // Rotated order, so no subject always runs first (or last) in a round.
    for (let offset = 0; offset < subjects.length; offset++) {
      const [name, wrap] = subjects[(round + offset) % subjects.length] as [string, WarmWrap];
      const result = await runLoad((index) => wrap(keys[index % WARM_KEYS] as string, loader), {
        ops: args.ops,
        concurrency: args.concurrency,
        durationMs: args.durationMs,
      });
      results.get(name)?.push(result);
    }
  }
  const l1Hits = cache.stats.l1.hits;
  await cache.disconnect();
  process.stdout.write(`(ours answered ${l1Hits} calls from L1)\n`);
  return subjects.map(([name]) => {
    const combined = medianOfRounds(results.get(name) ?? []);
    return {
      scenario: 'warm wrap()',
      subject: name,
      opsPerSec: combined.opsPerSec,
      p50Ms: combined.p50Ms,
      p99Ms: combined.p99Ms,
      ops: combined.ops,
      errors: combined.errors,
      extra: { 'CPU us/op': combined.clientCpuUsPerOp.toFixed(2) },
    };
  });
}

// ---- main --------------------------------------------------------------------------------------

async function clean(db: BenchDatabase, redis: boolean): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS ${STAMPEDE_SCHEMA} CASCADE`);
  await db.query(`DROP SCHEMA IF EXISTS ${WARM_SCHEMA} CASCADE`);
  await db.query(`DROP TABLE IF EXISTS public.${PEER_TABLE}`);
  if (redis) {
    const { default: KeyvRedis } = await import('@keyv/redis');
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: PEER_NAMESPACE });
    await keyv.clear();
    await keyv.disconnect();
  }
}

const db = await openBenchDatabase();
try {
  const machine = describeMachine();
  process.stdout.write(
    `wrap() benchmark: ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, PostgreSQL ${db.serverVersion} (${db.source})\n`,
  );
  const redis = await redisReachable();
  if (!redis) process.stderr.write(`Redis not reachable at ${REDIS_URL}: the @keyv/redis row is left out\n`);
  await clean(db, redis);
  await PostgresCache.initDb({ connectionString: db.url, schema: STAMPEDE_SCHEMA });

  process.stdout.write(
    `\nCold-key stampede: ${PROCESSES} processes x ${CALLERS} concurrent wrap() on one cold key, loader ${LOADER_MS} ms, ${args.rounds} rounds\n`,
  );
  const runId = Date.now().toString(36);
  const subjects: StampedeSubject[] = redis
    ? ['ours', 'keyv-postgres', 'keyv-redis']
    : ['ours', 'keyv-postgres'];
  const stampedes: StampedeSummary[] = [];
  for (const subject of subjects) stampedes.push(await stampede(subject, db.url, runId));
  printStampede(stampedes);

  process.stdout.write(
    `\nWarm wrap() throughput: ${WARM_KEYS} warm keys, concurrency ${args.concurrency}, median of ${args.rounds} rounds\n`,
  );
  const warmRows = await warm(db);
  const targets: Target[] = [{ scenario: 'warm wrap()', peer: 'cache-manager wrap() in-memory', min: 1.0 }];
  const ratios = printReport(warmRows, { baseline: warmRows[0]?.subject ?? '', targets });

  if (args.json)
    await writeJsonReport(args.json, {
      machine,
      database: db.serverVersion,
      stampedes,
      warm: warmRows,
      ratios,
    });
  await clean(db, redis);
} finally {
  await db.close();
}
