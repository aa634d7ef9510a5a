/**
 * Adapter benchmark (issue 2): PostgresAdapter against @keyv/postgres, every subject behind
 * `new Keyv({ store })`, in one process and one run, under identical conditions.
 *
 *   npm run bench:adapter [-- --ops N] [--rounds N] [--quick] [--concurrency N] [--duration MS]
 *                              [--wait-quiet S] [--json FILE]
 *
 * Without DATABASE_URL an embedded PostgreSQL is started (and stopped at the end).
 */
import KeyvPostgres from '@keyv/postgres';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import pg from 'pg';
import { PostgresAdapter } from '../../src/index.js';
import { parseBenchArgs } from './lib/args.js';
import { type BenchDatabase, openBenchDatabase, withUrlParameter } from './lib/database.js';
import {
  type LoadOptions,
  type LoadResult,
  measureEach,
  medianOfRounds,
  rotated,
  runLoad,
} from './lib/load.js';
import { describeMachine } from './lib/machine.js';
import { machineBusyCpuUs } from './lib/proc.js';
import { waitForQuiet } from './lib/quiet.js';
import { formatOps, printReport, type ResultRow, type Target, writeJsonReport } from './lib/report.js';
import { describeRevision } from './lib/revision.js';
import { ServerCpuSampler } from './lib/server-cpu.js';
import { type BenchValue, makeValue } from './lib/values.js';

const args = parseBenchArgs({ ops: 20_000, quickOps: 2_000, rounds: 5, quickRounds: 1 });
const sizes = args.quick
  ? { keys: 2_000, bulkRows: 20_000, clearRows: 2_000, clearRepetitions: 2, batch: 2_000 }
  : { keys: 10_000, bulkRows: 100_000, clearRows: 10_000, clearRepetitions: 3, batch: 2_000 };
/** A getMany moves 100 rows: a fifth of the operations keeps it within the time budget. */
const GET_MANY_KEYS = 100;
const getManyOps = Math.max(100, Math.floor(args.ops / 5));

// ---- subjects ------------------------------------------------------------------------------

interface OpenSubject {
  keyv: Keyv<BenchValue>;
  /** Errors the store or Keyv emitted instead of throwing. */
  emitted: () => number;
  close(): Promise<void>;
}

interface Subject {
  name: string;
  /** `application_name` of the subject's connections, to count them in pg_stat_activity. */
  applicationName: string;
  /** Pool size the subject runs with, and where that number comes from. */
  poolSize: string;
  /** Schema-qualified name of the subject's table. */
  table: string;
  /** A query counting the rows a reader sees (`n`), when that is not every row of the table. */
  countLiveRows?: string;
  /** How the table is made. */
  tableKind: string;
  /**
   * Whether clear() on a store that was given several namespaces clears them all (ours, see the README): the
   * clear scenario then fills the other namespace through a store of its own.
   */
  sharedStoreClearsAll?: boolean;
  /** Removes every object the subject created, so each scenario starts from an empty table. */
  drop(db: BenchDatabase): Promise<void>;
  open(db: BenchDatabase): Promise<OpenSubject>;
}

function wrap(store: KeyvStoreAdapter, close: () => Promise<void>): OpenSubject {
  const keyv = new Keyv<BenchValue>({ store, throwOnErrors: true });
  let emitted = 0;
  keyv.on('error', () => {
    emitted++;
  });
  return { keyv, emitted: () => emitted, close };
}

const OURS = 'ours';
const PEER_DEFAULTS = '@keyv/postgres (defaults)';
const PEER_UNLOGGED = '@keyv/postgres (unlogged)';

const OURS_UNMERGED = 'ours (one statement per call)';

/**
 * Our adapter. `unmerged` runs it as it ran before statements were bounded and merged: every call its
 * own statement, on up to the whole pool of 10 (maxInFlight 10, batchSize 1).
 */
function oursSubject(unmerged: boolean): Subject {
  const schema = unmerged ? 'bench_ours_unmerged' : 'bench_ours';
  const table = `${schema}.pgcache_entries`;
  return {
    name: unmerged ? OURS_UNMERGED : OURS,
    applicationName: schema,
    poolSize: unmerged
      ? '10 (poolSize default), all in use: maxInFlight 10, batchSize 1'
      : '10 (poolSize default), at most 4 statements at once (maxInFlight default)',
    table,
    // clear() hides a namespace's rows behind its marker and the sweeper deletes them later: count what readers see.
    countLiveRows: `SELECT count(*) AS n FROM ${table} e
      WHERE e.key_hash <> '\\x'::bytea AND e.version > COALESCE((SELECT m.version FROM ${table} m
        WHERE m.namespace = e.namespace AND m.key_hash = '\\x'::bytea), 0)`,
    tableKind: 'UNLOGGED (default), PRIMARY KEY (namespace, key_hash)',
    sharedStoreClearsAll: true,
    async drop(db) {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
    async open(db) {
      const adapter = new PostgresAdapter({
        connectionString: db.url,
        schema,
        sweepInterval: 0,
        ...(unmerged ? { maxInFlight: 10, batchSize: 1 } : {}),
        // Only names the connections for pg_stat_activity; no effect on speed.
        poolConfig: { application_name: schema },
      });
      await adapter.init();
      // keyv 5.6 declares KeyvStoreAdapter.setMany as Promise<void> while Keyv.setMany returns what the
      // store returns (boolean[]), which is what PostgresAdapter gives; only the declaration differs.
      return wrap(adapter as unknown as KeyvStoreAdapter, () => adapter.disconnect());
    },
  };
}

/** The pool size @keyv/postgres gets: it passes no `max`, so pg.Pool's own default applies. */
const PG_POOL_DEFAULT_MAX = (() => {
  const probe = new pg.Pool();
  void probe.end();
  return probe.options.max;
})();

/**
 * @keyv/postgres 2.x keeps ONE module-global pool, replaced when a different uri comes and ended by
 * any instance's disconnect(). Each peer therefore gets a uri of its own (a distinct
 * application_name) and peers are only ever open one at a time, disconnected in between.
 */
function peer(name: string, table: string, applicationName: string, unlogged: boolean): Subject {
  return {
    name,
    applicationName,
    poolSize: `${PG_POOL_DEFAULT_MAX} (module-global pg.Pool, no max given: pg's default)`,
    table: `public.${table}`,
    tableKind: `${unlogged ? 'UNLOGGED' : 'logged'}, key VARCHAR(255) PRIMARY KEY`,
    async drop(db) {
      await db.query(`DROP TABLE IF EXISTS public.${table}`);
    },
    async open(db) {
      const uri = withUrlParameter(db.url, 'application_name', applicationName);
      const store = new KeyvPostgres(unlogged ? { uri, table, useUnloggedTable: true } : { uri, table });
      const opened = wrap(store, () => store.disconnect());
      // Every query waits for the constructor's CREATE TABLE; this makes it happen before timing.
      await store.query('SELECT 1');
      return opened;
    },
  };
}

const subjects: Subject[] = [
  oursSubject(false),
  oursSubject(true),
  peer(PEER_DEFAULTS, 'bench_peer', 'bench_peer', false),
  peer(PEER_UNLOGGED, 'bench_peer_unlogged', 'bench_peer_unlogged', true),
];

// ---- scenarios -----------------------------------------------------------------------------

const hitKey = (index: number) => `k:${(index * 7919) % sizes.keys}`;

/** Writes `count` entries `${prefix}${i}` with Keyv's setMany, in batches, in the Keyv's current namespace. */
async function populate(keyv: Keyv<BenchValue>, prefix: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += sizes.batch) {
    const entries = [];
    for (let i = start; i < Math.min(count, start + sizes.batch); i++) {
      entries.push({ key: `${prefix}${i}`, value: makeValue(i) });
    }
    await keyv.setMany(entries);
  }
}

async function countRows(db: BenchDatabase, subject: Subject): Promise<number> {
  const rows = await db.query<{ n: string }>(
    subject.countLiveRows ?? `SELECT count(*) AS n FROM ${subject.table}`,
  );
  return Number(rows[0]?.n ?? Number.NaN);
}

interface ScenarioContext {
  db: BenchDatabase;
  subject: Subject;
  /** The load runner with the run's settings, sampling the subject's server CPU while it measures. */
  load(op: (index: number) => Promise<unknown>, ops?: number): Promise<LoadResult>;
  /** Hooks that sample the subject's server CPU, for measurements outside `load`. */
  sampling: Pick<LoadOptions, 'beforeMeasure' | 'afterMeasure'>;
}

interface Scenario {
  name: string;
  /** Measured `--rounds` times (load scenarios); otherwise once (it repeats inside). */
  repeated: boolean;
  run(keyv: Keyv<BenchValue>, context: ScenarioContext): Promise<LoadResult>;
}

const scenarios: Scenario[] = [
  {
    name: 'get hit',
    repeated: true,
    async run(keyv, { load }) {
      await populate(keyv, 'k:', sizes.keys);
      return load(async (index) => {
        if ((await keyv.get(hitKey(index))) === undefined)
          throw new Error(`get hit: ${hitKey(index)} missing`);
      });
    },
  },
  {
    name: 'get miss',
    repeated: true,
    async run(keyv, { load }) {
      await populate(keyv, 'k:', sizes.keys);
      return load(async (index) => {
        if ((await keyv.get(`m:${index}`)) !== undefined) throw new Error(`get miss: m:${index} found`);
      });
    },
  },
  {
    name: 'set',
    repeated: true,
    async run(keyv, { load }) {
      await populate(keyv, 'k:', sizes.keys);
      return load((index) => keyv.set(`s:${index}`, makeValue(index)));
    },
  },
  {
    name: `getMany ${GET_MANY_KEYS}`,
    repeated: true,
    async run(keyv, { load }) {
      await populate(keyv, 'k:', sizes.keys);
      return load(async (index) => {
        const keys = Array.from({ length: GET_MANY_KEYS }, (_, j) => hitKey(index * GET_MANY_KEYS + j));
        const values = await keyv.getMany(keys);
        const found = values.filter((value) => value !== undefined).length;
        if (found !== GET_MANY_KEYS) throw new Error(`getMany: ${found} of ${GET_MANY_KEYS} found`);
      }, getManyOps);
    },
  },
  {
    name: `clear ${sizes.clearRows / 1000}k of ${(sizes.bulkRows + sizes.clearRows) / 1000}k`,
    repeated: false,
    async run(keyv, { db, subject, sampling }) {
      // The namespace cleared is the Keyv's own (Keyv's default, 'keyv'): a store that saw its Keyv switch
      // namespaces counts as shared by both, and its clear() empties both (ours does, see the README).
      const cleared = keyv.namespace;
      if (subject.sharedStoreClearsAll) {
        const bulk = await subject.open(db);
        bulk.keyv.namespace = 'bulk';
        await populate(bulk.keyv, 'b:', sizes.bulkRows);
        await bulk.close();
      } else {
        keyv.namespace = 'bulk';
        await populate(keyv, 'b:', sizes.bulkRows);
        keyv.namespace = cleared;
      }
      const expectRemaining = async (expected: number) => {
        const remaining = await countRows(db, subject);
        if (remaining !== expected) throw new Error(`clear: ${remaining} rows remain, expected ${expected}`);
      };
      const result = await measureEach(
        sizes.clearRepetitions,
        async (repetition) => {
          if (repetition > 0) await expectRemaining(sizes.bulkRows);
          await populate(keyv, 't:', sizes.clearRows);
          await expectRemaining(sizes.bulkRows + sizes.clearRows);
        },
        () => keyv.clear(),
        sampling,
      );
      await expectRemaining(sizes.bulkRows);
      return result;
    },
  },
];

// ---- targets (issue 2; informational) ------------------------------------------------------

const clearScenario = scenarios[scenarios.length - 1]?.name ?? 'clear';
const targets: Target[] = [
  { scenario: 'get hit', peer: PEER_DEFAULTS, min: 1.3 },
  { scenario: 'get miss', peer: PEER_DEFAULTS, min: 1.3 },
  { scenario: 'set', peer: PEER_DEFAULTS, min: 1.5 },
  { scenario: clearScenario, peer: PEER_DEFAULTS, min: 10 },
];

// ---- run -----------------------------------------------------------------------------------

interface Measurement {
  result: LoadResult;
  /** Server (backend) CPU per measured operation, in microseconds; undefined when the server is not local. */
  serverCpuUsPerOp: number | undefined;
  /** Server (backend) CPU over the measured time, as a share of one core. */
  serverCpuPercent: number | undefined;
  /** CPU the rest of the machine used meanwhile (other processes, PostgreSQL background work), share of one core. */
  otherCpuPercent: number | undefined;
  /** Connections the subject held on the server at the end of the scenario (its pool size in use). */
  connections: number;
  /** Errors the store or Keyv emitted (also counted in the row's errors). */
  emittedErrors: number;
  /** Time spent waiting for the machine to go quiet (`--wait-quiet`), and how often it never did. */
  quietWaitMs: number;
  startedBusy: number;
}

interface MeasuredRow extends ResultRow {
  rounds: number;
  opsPerSecRange: [number, number];
  clientCpuUsPerOp: number;
  clientCpuPercent: number;
  serverCpuUsPerOp: number | undefined;
  serverCpuPercent: number | undefined;
  otherCpuPercent: number | undefined;
  connections: number[];
  firstError?: string | undefined;
}

async function connectionsOf(db: BenchDatabase, subject: Subject): Promise<number> {
  const rows = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
    [subject.applicationName],
  );
  return Number(rows[0]?.n ?? 0);
}

/** One subject, one scenario, from an empty table; the subject is closed (and its table dropped) after. */
async function measure(db: BenchDatabase, scenario: Scenario, subject: Subject): Promise<Measurement> {
  await subject.drop(db);
  const opened = await subject.open(db);
  const sampler = new ServerCpuSampler(db, subject.applicationName);
  let serverCpuUs: number | undefined = 0;
  let machineCpuUs: number | undefined = 0;
  let machineBefore: number | undefined;
  let waitedMs = 0;
  let notQuiet = 0;
  const add = (total: number | undefined, used: number | undefined) =>
    total === undefined || used === undefined ? undefined : total + used;
  const sampling = {
    beforeMeasure: async () => {
      if (args.waitQuietMs > 0) {
        const outcome = await waitForQuiet({ maxWaitMs: args.waitQuietMs });
        waitedMs += outcome.waitedMs;
        if (!outcome.quiet) notQuiet++;
      }
      await sampler.start();
      machineBefore = await machineBusyCpuUs();
    },
    afterMeasure: async () => {
      const machineAfter = await machineBusyCpuUs();
      const used = await sampler.stop();
      serverCpuUs = add(serverCpuUs, used);
      machineCpuUs = add(
        machineCpuUs,
        machineAfter === undefined || machineBefore === undefined ? undefined : machineAfter - machineBefore,
      );
    },
  };
  const context: ScenarioContext = {
    db,
    subject,
    sampling,
    load: (op, ops = args.ops) =>
      runLoad(op, { ops, concurrency: args.concurrency, durationMs: args.durationMs, ...sampling }),
  };
  let result: LoadResult;
  let connections = 0;
  try {
    result = await scenario.run(opened.keyv, context);
    connections = await connectionsOf(db, subject);
  } finally {
    await opened.close();
  }
  await subject.drop(db);
  const serverUs: number | undefined = serverCpuUs;
  const machineUs: number | undefined = machineCpuUs;
  const clientUs = result.clientCpuUsPerOp * result.ops;
  return {
    result: { ...result, errors: result.errors + opened.emitted() },
    serverCpuUsPerOp: serverUs === undefined || result.ops === 0 ? undefined : serverUs / result.ops,
    serverCpuPercent: serverUs === undefined ? undefined : serverUs / 10 / result.elapsedMs,
    // /proc/stat counts in clock ticks (10 ms): too coarse for a few short clears.
    otherCpuPercent:
      machineUs === undefined || serverUs === undefined || result.elapsedMs < 200
        ? undefined
        : Math.max(0, machineUs - serverUs - clientUs) / 10 / result.elapsedMs,
    connections,
    emittedErrors: opened.emitted(),
    quietWaitMs: waitedMs,
    startedBusy: notQuiet,
  };
}

/**
 * Runs every operation of the load scenarios briefly through each subject before anything is
 * measured, so that JIT compilation of the shared code (Keyv, pg, the load loop) does not count
 * against whichever subject happens to go first.
 */
async function warmUp(db: BenchDatabase, subject: Subject): Promise<void> {
  await subject.drop(db);
  const opened = await subject.open(db);
  try {
    const keyv = opened.keyv;
    await populate(keyv, 'k:', Math.min(sizes.keys, 2_000));
    const brief = { ops: 2_000, warmupOps: 0, concurrency: args.concurrency, durationMs: 2_000 };
    await runLoad((index) => keyv.get(`k:${index % 2_000}`), brief);
    await runLoad((index) => keyv.get(`m:${index}`), brief);
    await runLoad((index) => keyv.set(`w:${index}`, makeValue(index)), brief);
    await runLoad(
      (index) => keyv.getMany(Array.from({ length: GET_MANY_KEYS }, (_, j) => `k:${(index + j) % 2_000}`)),
      { ...brief, ops: 200 },
    );
    await keyv.clear();
  } finally {
    await opened.close();
  }
  await subject.drop(db);
}

/** Other CPU above this share of one core during a measurement marks the measurement as disturbed. */
const DISTURBED_PERCENT = 25;

/** Median of the defined values; undefined when any is undefined (the server was not readable). */
function medianOf(values: Array<number | undefined>): number | undefined {
  if (values.length === 0 || values.some((value) => value === undefined)) return undefined;
  const sorted = (values as number[]).slice().sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
const formatRange = ([low, high]: [number, number]) => `${formatOps(low)}-${formatOps(high)}`;

async function main(): Promise<number> {
  const started = Date.now();
  const machine = describeMachine();
  const revision = describeRevision(['src/adapter']);
  const db = await openBenchDatabase();
  try {
    const settings = await db.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
       WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections', 'wal_level')
       ORDER BY name`,
    );
    const collation = await db.query<{ datcollate: string }>(
      'SELECT datcollate FROM pg_database WHERE datname = current_database()',
    );
    const settingText = [
      `lc_collate=${collation[0]?.datcollate ?? '?'}`,
      ...settings.map((s) => `${s.name}=${s.setting}${s.unit && s.unit !== 'ms' ? ` ${s.unit}` : ''}`),
    ].join(', ');
    const out = (line = '') => process.stdout.write(`${line}\n`);
    out('Adapter benchmark (issue 2): every subject behind new Keyv({ store }), keyv 5.6');
    out(`machine:     ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}`);
    out(`node:        ${machine.node}`);
    out(`code:        ${revision ?? 'unknown'} (src/adapter)`);
    out(`postgres:    ${db.serverVersion} (${db.source}: ${redact(db.url)})`);
    out(`settings:    ${settingText}`);
    out(
      `load:        concurrency ${args.concurrency}, ${args.ops} ops per scenario (getMany: ${getManyOps}), ` +
        `each bounded to ${args.durationMs / 1000} s, warm-up ${Math.min(Math.ceil(args.ops / 10), 1000)} ops; ` +
        `${args.rounds} round(s), subjects in rotated order, median reported`,
    );
    out(
      `data:        ${sizes.keys} keys of ~${JSON.stringify(makeValue(123456)).length} B JSON pre-populated, ` +
        `fresh table per measurement; clear: ${sizes.clearRows} rows of one namespace among ${sizes.bulkRows} ` +
        `of another, ${sizes.clearRepetitions} timed clears`,
    );
    for (const subject of subjects) {
      out(`subject:     ${subject.name}: ${subject.table} (${subject.tableKind}); pool ${subject.poolSize}`);
    }
    out();

    process.stderr.write('  warming up (JIT, connections) ...');
    for (const subject of subjects) await warmUp(db, subject);
    process.stderr.write(' done\n');

    const rows: MeasuredRow[] = [];
    let quietWaitMs = 0;
    let startedBusy = 0;
    for (const scenario of scenarios) {
      const rounds = scenario.repeated ? args.rounds : 1;
      const measured = new Map<Subject, Measurement[]>(subjects.map((subject) => [subject, []]));
      for (let round = 0; round < rounds; round++) {
        for (const subject of rotated(subjects, round)) {
          const t0 = Date.now();
          const label = `  ${scenario.name} / ${subject.name}${rounds > 1 ? ` (round ${round + 1})` : ''}`;
          process.stderr.write(`${label} ...`);
          const measurement = await measure(db, scenario, subject);
          const seconds = ((Date.now() - t0) / 1000).toFixed(1);
          process.stderr.write(` ${formatOps(measurement.result.opsPerSec)} ops/s (${seconds} s)\n`);
          if (measurement.result.firstError) {
            process.stderr.write(`    first error: ${measurement.result.firstError}\n`);
          }
          measured.get(subject)?.push(measurement);
          quietWaitMs += measurement.quietWaitMs;
          startedBusy += measurement.startedBusy;
        }
      }
      for (const subject of subjects) {
        const list = measured.get(subject) ?? [];
        const combined = medianOfRounds(list.map((m) => m.result));
        const serverUsPerOp = medianOf(list.map((m) => m.serverCpuUsPerOp));
        const serverPercent = medianOf(list.map((m) => m.serverCpuPercent));
        const otherPercent = medianOf(
          list.map((m) => m.otherCpuPercent).filter((value) => value !== undefined),
        );
        rows.push({
          scenario: scenario.name,
          subject: subject.name,
          opsPerSec: combined.opsPerSec,
          p50Ms: combined.p50Ms,
          p99Ms: combined.p99Ms,
          ops: combined.ops,
          errors: combined.errors,
          extra: {
            'ops/s range': rounds > 1 ? formatRange(combined.opsPerSecRange) : '',
            'client CPU': `${combined.clientCpuPercent.toFixed(0)}%`,
            'CPU us/op': combined.clientCpuUsPerOp.toFixed(0),
            'server CPU': serverPercent === undefined ? '-' : `${serverPercent.toFixed(0)}%`,
            'server us/op': serverUsPerOp === undefined ? '-' : serverUsPerOp.toFixed(0),
            'other CPU': otherPercent === undefined ? '-' : `${otherPercent.toFixed(0)}%`,
          },
          otherCpuPercent: otherPercent,
          serverCpuUsPerOp: serverUsPerOp,
          serverCpuPercent: serverPercent,
          rounds: combined.rounds,
          opsPerSecRange: combined.opsPerSecRange,
          clientCpuUsPerOp: combined.clientCpuUsPerOp,
          clientCpuPercent: combined.clientCpuPercent,
          connections: list.map((m) => m.connections),
          firstError: combined.firstError,
        });
      }
    }
    out();
    const ratios = printReport(rows, { baseline: OURS, targets });
    out();
    const pools = subjects
      .map((subject) => {
        const seen = new Set(rows.filter((r) => r.subject === subject.name).flatMap((r) => r.connections));
        return `${subject.name} ${[...seen].sort((a, b) => b - a).join('/')}`;
      })
      .join('; ');
    out(`server connections held at the end of each measurement: ${pools}`);
    out('ops/s, p50, p99: median over the rounds; n: operations measured over all rounds');
    out(
      'client CPU: this process (Keyv + pg driver + load loop), share of one core and CPU time per operation',
    );
    out(
      "server CPU: the subject's backends (read from /proc, local servers only), share of one core and CPU time per operation",
    );
    out(
      'other CPU: everything else on the machine meanwhile (other processes, PostgreSQL background work such as ' +
        `the WAL writer), share of one core; with ${machine.cpus} cores, a high figure means a disturbed measurement`,
    );
    out('clear: ops/s = clears per second (1 / mean duration); p50/p99 = median/slowest of the repetitions');
    out('targets are informational');
    if (args.waitQuietMs > 0) {
      out(
        `--wait-quiet: waited ${(quietWaitMs / 1000).toFixed(1)} s in all for other processes to go quiet; ` +
          `${startedBusy} measurement(s) started without it`,
      );
    }
    const disturbed = rows.filter((row) => (row.otherCpuPercent ?? 0) > DISTURBED_PERCENT);
    if (disturbed.length > 0) {
      out(
        `WARNING: ${disturbed.length} of ${rows.length} rows were measured while other work used more than ` +
          `${DISTURBED_PERCENT}% of a core (${disturbed.map((row) => `${row.scenario} / ${row.subject}`).join(', ')}); ` +
          'rerun on a quiet machine before trusting them',
      );
    }
    const errors = rows.reduce((sum, row) => sum + (row.errors ?? 0), 0);
    const wallSeconds = (Date.now() - started) / 1000;
    out(`total errors: ${errors}; wall time ${wallSeconds.toFixed(1)} s`);

    if (args.json) {
      await writeJsonReport(args.json, {
        benchmark: 'adapter',
        finishedAt: new Date().toISOString(),
        wallSeconds,
        machine,
        revision,
        database: {
          source: db.source,
          version: db.serverVersion,
          collation: collation[0]?.datcollate,
          settings,
        },
        options: { ...args, getManyOps, ...sizes },
        subjects: subjects.map(({ name, table, tableKind, poolSize }) => ({
          name,
          table,
          tableKind,
          poolSize,
        })),
        rows: rows.map(({ extra: _extra, ...row }) => row),
        ratios,
      });
      out(`JSON written to ${args.json}`);
    }
    return errors > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `\nbenchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
