/**
 * Store benchmark (issue 3): PostgresCache behind `new Keyv(...)` against @keyv/redis and
 * @keyv/postgres, in one run.
 *
 *   npm run bench:store [-- --ops N] [--rounds N] [--quick] [--concurrency N] [--wait-quiet S] [--json FILE]
 *
 * Scenarios: L1-hit get (with Keyv over its own Map store as the in-process ceiling); set while four other processes listen; propagation delay from a write on
 * this process to the change event in four others at 1000 writes/s; RSS growth of one million sets
 * into an L1 bounded at 50 MB. Without DATABASE_URL an embedded PostgreSQL is started.
 */
import { performance } from 'node:perf_hooks';
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { PostgresCache } from '../../src/index.js';
import { now } from '../clock.js';
import { parseBenchArgs } from './lib/args.js';
import { openBenchDatabase, withUrlParameter } from './lib/database.js';
import { percentile } from './lib/latency.js';
import { type LoadResult, medianOfRounds, rotated, runLoad } from './lib/load.js';
import { describeMachine } from './lib/machine.js';
import { waitForQuiet } from './lib/quiet.js';
import { REDIS_URL, redisReachable } from './lib/redis.js';
import { printReport, type ResultRow, type Target, writeJsonReport } from './lib/report.js';
import { makeValue } from './lib/values.js';
import { forkScript, nextMessage, stopChild } from './store/children.js';

const args = parseBenchArgs({ ops: 50_000, quickOps: 5_000, rounds: 3, quickRounds: 1 });
const KEYS = 1000;
const LISTENERS = 4;
const WRITES_PER_SECOND = 1000;
const PROPAGATION_SECONDS = args.quick ? 2 : 5;
const MEMORY_SETS = args.quick ? 100_000 : 1_000_000;
const SCHEMA = 'bench_store';
const OURS = 'ours (L1)';
const OURS_DECODED = 'ours (L1, decodeL1Hits)';
const REDIS = '@keyv/redis';
const PEER = '@keyv/postgres (defaults)';
const MAP = 'Keyv over a Map (ceiling)';

const value = makeValue(1);
const key = (i: number) => `user:${i % KEYS}`;

/** Every subject measured `--rounds` times, round r starting from subject r, so none is always first. */
async function measureRotated(
  subjects: Array<[string, Keyv]>,
  run: (keyv: Keyv) => Promise<LoadResult>,
): Promise<Array<[string, LoadResult]>> {
  const rounds = new Map<string, LoadResult[]>(subjects.map(([name]) => [name, []]));
  for (let round = 0; round < args.rounds; round++) {
    for (const [name, keyv] of rotated(subjects, round)) {
      if (args.waitQuietMs > 0) await waitForQuiet({ maxWaitMs: args.waitQuietMs });
      rounds.get(name)?.push(await run(keyv));
    }
  }
  return subjects.map(([name]) => {
    const result = medianOfRounds(rounds.get(name) ?? []);
    if (result.errors > 0)
      process.stderr.write(`${name}: ${result.errors} errors, first: ${result.firstError}\n`);
    return [name, result];
  });
}

const row = (scenario: string, subject: string, result: LoadResult): ResultRow => ({
  scenario,
  subject,
  opsPerSec: result.opsPerSec,
  p50Ms: result.p50Ms,
  p99Ms: result.p99Ms,
  ops: result.ops,
  errors: result.errors,
});

const db = await openBenchDatabase();
const rows: ResultRow[] = [];
const extra: Record<string, unknown> = {};
const load = { concurrency: args.concurrency, ops: args.ops, durationMs: args.durationMs };
try {
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.query('DROP TABLE IF EXISTS bench_store_peer');
  await PostgresCache.initDb({ connectionString: db.url, schema: SCHEMA });
  const cache = new PostgresCache({ connectionString: db.url, schema: SCHEMA, sweepInterval: 0 });
  const ours = new Keyv({ store: cache, namespace: 'bench' });
  // The same table through a second cache that hands Keyv its L1 hits decoded.
  const decodingCache = new PostgresCache({
    connectionString: db.url,
    schema: SCHEMA,
    sweepInterval: 0,
    decodeL1Hits: true,
  });
  const oursDecoded = new Keyv({ store: decodingCache, namespace: 'bench' });
  await Promise.all([cache.init(), decodingCache.init()]);
  const peer = new Keyv({
    store: new KeyvPostgres({
      uri: withUrlParameter(db.url, 'application_name', 'bench_peer'),
      table: 'bench_store_peer',
    }),
    namespace: 'bench',
  });
  const redis = (await redisReachable())
    ? new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: 'bench-store' })
    : undefined;
  if (!redis)
    process.stderr.write(`Redis not reachable at ${REDIS_URL}: the @keyv/redis rows are left out\n`);

  // ---- get: ours from a warm L1, the peers from their servers -------------------------------
  // Keyv's own in-memory store: what any store's hit costs inside Keyv, the most an L1 can reach.
  const map = new Keyv({ store: new Map(), namespace: 'bench' });
  for (const keyv of [ours, peer, redis, map]) {
    if (keyv) await keyv.setMany(Array.from({ length: KEYS }, (_, i) => ({ key: key(i), value })));
  }
  for (let i = 0; i < KEYS; i++) await Promise.all([ours.get(key(i)), oursDecoded.get(key(i))]);
  const get = (keyv: Keyv) => (i: number) => keyv.get(key(i));
  const getSubjects: Array<[string, Keyv]> = [
    [OURS, ours],
    [OURS_DECODED, oursDecoded],
    [PEER, peer],
    [MAP, map],
  ];
  if (redis) getSubjects.splice(2, 0, [REDIS, redis]);
  for (const [name, result] of await measureRotated(getSubjects, (keyv) => runLoad(get(keyv), load))) {
    rows.push(row('get (hit)', name, result));
  }
  extra.l1HitsDuringGet = cache.stats.l1.hits + decodingCache.stats.l1.hits;
  await decodingCache.disconnect();

  // ---- set, with four other processes listening -------------------------------------------
  const listeners = Array.from({ length: LISTENERS }, () =>
    forkScript('listener-process.ts', [db.url, SCHEMA]),
  );
  try {
    await Promise.all(
      listeners.map((child) => nextMessage(child, (m: { ready?: boolean }) => m.ready === true)),
    );
    let n = 0;
    const set = (keyv: Keyv, prefix: string) => () => keyv.set(`${prefix}${n++}`, value);
    const setScenario = `set (${LISTENERS} listening processes)`;
    const setSubjects: Array<[string, Keyv]> = [
      [OURS, ours],
      [PEER, peer],
    ];
    for (const [name, result] of await measureRotated(setSubjects, (keyv) => runLoad(set(keyv, 's'), load))) {
      rows.push(row(setScenario, name, result));
    }
    for (const child of listeners) {
      child.send({ cmd: 'record' });
      await nextMessage(child, (m: { recording?: boolean }) => m.recording === true);
    }

    // ---- propagation: write on this process, change event in the four others --------------
    const issued = new Map<string, { issuedAt: number; ackedAt: number }>();
    const total = WRITES_PER_SECOND * PROPAGATION_SECONDS;
    const started = performance.now();
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / WRITES_PER_SECOND;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const k = `p${i}`;
      const issuedAt = now();
      writes.push(
        ours.set(k, value).then(() => {
          issued.set(`bench:${k}`, { issuedAt, ackedAt: now() });
        }),
      );
    }
    await Promise.all(writes);
    const achievedRate = total / ((performance.now() - started) / 1000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const fromCommit: number[] = [];
    const fromIssue: number[] = [];
    let missing = 0;
    for (const child of listeners) {
      child.send({ cmd: 'arrivals' });
      const { arrivals } = await nextMessage<{ arrivals?: Array<[string, number]> }>(
        child,
        (m) => m.arrivals !== undefined,
      );
      const seen = new Map(arrivals);
      for (const [k, times] of issued) {
        const arrivedAt = seen.get(k);
        if (arrivedAt === undefined) {
          missing++;
          continue;
        }
        // The commit happened between issue and acknowledgement: the two give a range for the delay.
        fromCommit.push(Math.max(0, arrivedAt - times.ackedAt));
        fromIssue.push(arrivedAt - times.issuedAt);
      }
    }
    fromCommit.sort((a, b) => a - b);
    fromIssue.sort((a, b) => a - b);
    extra.propagation = {
      writesPerSecond: Math.round(achievedRate),
      listeningProcesses: LISTENERS,
      events: fromCommit.length,
      missing,
      afterAckMs: {
        p50: percentile(fromCommit, 0.5),
        p99: percentile(fromCommit, 0.99),
        max: fromCommit.at(-1),
      },
      afterIssueMs: {
        p50: percentile(fromIssue, 0.5),
        p99: percentile(fromIssue, 0.99),
        max: fromIssue.at(-1),
      },
    };
  } finally {
    await Promise.all(listeners.map(stopChild));
  }

  // ---- memory: one million distinct sets into an L1 bounded at 50 MB ------------------------
  const memoryChild = forkScript('memory-process.ts', [db.url, SCHEMA, String(MEMORY_SETS)], ['--expose-gc']);
  extra.memory = await nextMessage(memoryChild, () => true);
  await new Promise((resolve) => memoryChild.once('exit', resolve));

  await ours.disconnect();
  await peer.disconnect();
  await redis?.disconnect();

  const targets: Target[] = [
    { scenario: 'get (hit)', peer: REDIS, min: 3 },
    { scenario: 'get (hit)', peer: PEER, min: 10 },
    { scenario: 'get (hit)', peer: REDIS, min: 3, subject: OURS_DECODED },
    { scenario: 'get (hit)', peer: PEER, min: 10, subject: OURS_DECODED },
    { scenario: `set (${LISTENERS} listening processes)`, peer: PEER, min: 1 },
  ];
  process.stdout.write(
    `\nStore benchmark — PostgreSQL ${db.serverVersion} (${db.source}), concurrency ${args.concurrency}, ${args.rounds} round(s), median\n`,
  );
  const ratios = printReport(rows, { baseline: [OURS, OURS_DECODED], targets });
  const propagation = extra.propagation as {
    writesPerSecond: number;
    events: number;
    missing: number;
    afterAckMs: { p50: number; p99: number; max: number };
    afterIssueMs: { p50: number; p99: number; max: number };
  };
  const memory = extra.memory as {
    sets: number;
    readAtMs: number[];
    rssGrowthMb: number[];
    l1Entries: number;
    l1Mb: number;
  };
  const rssReadings = memory.readAtMs
    .map((at, i) => {
      const growth = memory.rssGrowthMb[i] ?? Number.NaN;
      return `  ${at === 0 ? 'at once' : `after ${at / 1000} s idle`}: RSS +${growth.toFixed(1)} MB — target < 60 MB: ${growth < 60 ? 'PASS' : 'MISS'}`;
    })
    .join('\n');
  const ms = (value: number) => value.toFixed(2);
  process.stdout.write(
    `\npropagation at ${propagation.writesPerSecond} writes/s to ${LISTENERS} processes (${propagation.events} events, ${propagation.missing} missing):\n` +
      `  after the write's acknowledgement: p50 ${ms(propagation.afterAckMs.p50)} ms, p99 ${ms(propagation.afterAckMs.p99)} ms, max ${ms(propagation.afterAckMs.max)} ms\n` +
      `  after the write was issued:        p50 ${ms(propagation.afterIssueMs.p50)} ms, p99 ${ms(propagation.afterIssueMs.p99)} ms, max ${ms(propagation.afterIssueMs.max)} ms\n` +
      `  target p99 < 5 ms: ${propagation.afterIssueMs.p99 < 5 ? 'PASS' : 'MISS'} (measured from issue, the conservative end)\n` +
      `\nmemory: ${memory.sets.toLocaleString('en-US')} distinct sets, L1 bounded at 50 MB holds ${memory.l1Entries.toLocaleString('en-US')} entries (${memory.l1Mb.toFixed(1)} MB counted); after a full GC\n` +
      `${rssReadings}\n`,
  );
  if (args.json)
    await writeJsonReport(args.json, {
      machine: describeMachine(),
      database: db.serverVersion,
      rows,
      ratios,
      ...extra,
    });
} finally {
  await db.close();
}
