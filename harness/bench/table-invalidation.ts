/**
 * Table-change invalidation latency (issue 5): from an UPDATE's COMMIT, issued over a plain `pg`
 * connection, to the eviction in other processes.
 *
 *   npm run bench:invalidation [-- --ops N] [--processes N] [--quick] [--json FILE]
 *
 * Each of N child processes holds `user:<id>` entries in a PostgresCache (L1 and table) and runs
 * `invalidateOnTableChange(cache, { table: 'users', keys: (row) => ['user:' + row.id] })`. The parent
 * updates one row at a time and, per child, records two delays from the moment COMMIT is sent:
 *   event    the table event reached the process (its L1 could drop the entry from here on);
 *   evicted  the process's deleteMany of the entry's row is done (the first one deletes it, and its delete
 *            event reaches every L1; the others find nothing).
 * Times are on the machine's monotonic clock, which every process reads alike (harness/clock.ts).
 * Then what the watch costs the writer (table-invalidation-writer.ts).
 * Without DATABASE_URL an embedded PostgreSQL is started.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  installTableWatch,
  invalidateOnTableChange,
  PostgresCache,
  tableWatcherFor,
} from '../../src/index.js';
import { now } from '../clock.js';
import { parseOrExit } from './lib/args.js';
import { openBenchDatabase } from './lib/database.js';
import { percentile } from './lib/latency.js';
import { describeMachine } from './lib/machine.js';
import { formatWriterCost, measureWriterCost } from './table-invalidation-writer.js';

const ROWS = 100;

// ---- child: one application process --------------------------------------------------------------

async function child(url: string, schema: string): Promise<void> {
  const cache = new PostgresCache({ connectionString: url, schema, namespace: 'app', sweepInterval: 0 });
  cache.on('error', () => undefined);
  await cache.init();
  const watcher = tableWatcherFor(cache);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  watcher.subscribe({
    table: 'users',
    onEvent: (event) => {
      say(`event ${event.new?.id} ${now()}`);
    },
  });
  const rule = invalidateOnTableChange(cache, { watcher, table: 'users', keys: (row) => [`user:${row.id}`] });
  rule.on('evict', (eviction) => say(`evicted ${eviction.keys.join(',')} ${now()}`));
  await rule.ready;
  say('ready');
  // Between updates the parent asks every child to hold the entry again (in its L1 too).
  createInterface({ input: process.stdin }).on('line', async (line) => {
    const [command, id] = line.split(' ');
    if (command === 'fill') {
      await cache.set(`user:${id}`, `cached ${id}`);
      say(`filled ${id}`);
    } else if (command === 'exit') {
      await rule.close();
      await watcher.close();
      await cache.disconnect();
      process.exit(0);
    }
  });
}

// ---- parent: the writer and the clock -------------------------------------------------------------

interface Child {
  send(line: string): void;
  next(prefix: string): Promise<string[]>;
  done: Promise<unknown>;
}

function startChild(url: string, schema: string): Child {
  const script = fileURLToPath(import.meta.url);
  const process_ = spawn(process.execPath, ['--import', 'tsx', script, '--child', url, schema], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting: Array<{ prefix: string; resolve: (words: string[]) => void }> = [];
  const lines: string[][] = [];
  createInterface({ input: process_.stdout }).on('line', (line) => {
    const words = line.split(' ');
    const index = waiting.findIndex((waiter) => waiter.prefix === words[0]);
    if (index >= 0) waiting.splice(index, 1)[0]?.resolve(words);
    else lines.push(words);
  });
  return {
    send: (line) => process_.stdin.write(`${line}\n`),
    next: (prefix) => {
      const index = lines.findIndex((words) => words[0] === prefix);
      if (index >= 0) return Promise.resolve(lines.splice(index, 1)[0] as string[]);
      return new Promise((resolve) => waiting.push({ prefix, resolve }));
    },
    done: new Promise((resolve) => process_.on('exit', resolve)),
  };
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
  };
}

async function parent(): Promise<void> {
  const options = {
    ops: { type: 'string' },
    processes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  } as const;
  const usage = `  --quick          fewer row changes
  --ops N          row changes to time (default 500, 100 with --quick)
  --processes N    listening processes (default 3)
  --json FILE      also write the report as JSON
  --help           this text
`;
  const { ops, processes, json } = parseOrExit(options, usage, process.argv.slice(2), (values) => {
    const ops = Number(values.ops ?? (values.quick ? 100 : 500));
    const processes = Number(values.processes ?? 3);
    if (!Number.isInteger(ops) || ops < 1 || !Number.isInteger(processes) || processes < 1) {
      throw new Error('--ops and --processes need positive integers');
    }
    return { ops, processes, json: typeof values.json === 'string' ? values.json : undefined };
  });
  const db = await openBenchDatabase();
  const schema = `bench_invalidation_${randomBytes(4).toString('hex')}`;
  const writer = new pg.Client({ connectionString: db.url, application_name: 'bench_writer' });
  const children: Child[] = [];
  try {
    await db.query(`CREATE SCHEMA "${schema}"`);
    await db.query(`CREATE TABLE "${schema}".users (id int PRIMARY KEY, name text NOT NULL)`);
    await db.query(`INSERT INTO "${schema}".users SELECT g, 'user ' || g FROM generate_series(1, ${ROWS}) g`);
    await PostgresCache.initDb({ connectionString: db.url, schema });
    await writer.connect();
    await installTableWatch(writer, { schema, table: 'users', cacheSchema: schema });
    for (let index = 0; index < processes; index++) children.push(startChild(db.url, schema));
    await Promise.all(children.map((each) => each.next('ready')));

    const commit: number[] = [];
    const event: number[] = [];
    const evicted: number[] = [];
    for (let op = 0; op < ops; op++) {
      const id = (op % ROWS) + 1;
      for (const each of children) each.send(`fill ${id}`);
      await Promise.all(children.map((each) => each.next('filled')));
      await writer.query('BEGIN');
      await writer.query(`UPDATE "${schema}".users SET name = $1 WHERE id = $2`, [`v${op}`, id]);
      const sent = now();
      await writer.query('COMMIT');
      commit.push(now() - sent);
      const reports = await Promise.all(
        children.map(async (each) => [await each.next('event'), await each.next('evicted')] as const),
      );
      for (const [heard, done] of reports) {
        if (heard[1] !== String(id) || done[1] !== `user:${id}`)
          throw new Error(`out of step: ${heard} ${done}`);
        event.push(Number(heard[2]) - sent);
        evicted.push(Number(done[2]) - sent);
      }
    }
    const writerCost = await measureWriterCost(writer, schema);
    const result = {
      benchmark: 'table-invalidation',
      machine: describeMachine(),
      database: { source: db.source, serverVersion: db.serverVersion },
      processes,
      updates: ops,
      commitMs: summary(commit),
      eventMs: summary(event),
      evictedMs: summary(evicted),
      writerCost,
    };
    const line = (name: string, s: ReturnType<typeof summary>) =>
      `${name.padEnd(36)} p50 ${s.p50Ms.toFixed(2).padStart(7)} ms   p99 ${s.p99Ms.toFixed(2).padStart(7)} ms   max ${s.maxMs.toFixed(2).padStart(7)} ms   n ${s.count}\n`;
    process.stdout.write(
      `PostgreSQL ${db.serverVersion} (${db.source}); ${result.machine.cpus} CPUs; ${processes} processes; ${ops} updates\n` +
        line('COMMIT round trip', result.commitMs) +
        line('COMMIT sent -> event in a process', result.eventMs) +
        line('COMMIT sent -> evicted in a process', result.evictedMs) +
        formatWriterCost(writerCost),
    );
    if (json) await writeFile(json, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const each of children) each.send('exit');
    await Promise.all(children.map((each) => each.done));
    await writer.end().catch(() => undefined);
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.close();
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] as string, process.argv[4] as string);
} else {
  await parent();
}
