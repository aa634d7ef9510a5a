/**
 * The load and consistency harness (`npm run harness -- --help`): N client processes run a mixed
 * workload through PostgresCache, optionally under faults; then read-your-writes, bounded staleness,
 * convergence and (with wrap()) stampede protection are checked, and the figures are reported as a
 * terminal table, JSON and a self-contained HTML page. Exits non-zero when an assertion fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { PostgresCache } from '../src/index.js';
import { describeMachine } from './bench/lib/machine.js';
import { writeJsonReport } from './bench/lib/report.js';
import { analyzeRun } from './load/analyze.js';
import { cleanUp, cleanUpOnSignals, onCleanup } from './load/cleanup.js';
import { runComparison } from './load/compare.js';
import { type LoadSettings, type RunPlace, runLoad } from './load/coordinator.js';
import { type HarnessDatabase, openHarnessDatabase } from './load/database.js';
import { unsupportedFault } from './load/faults.js';
import { type HarnessOptions, parseHarnessOptions } from './load/options.js';
import { ProgressDisplay } from './load/progress.js';
import { formatDuration } from './load/report/format.js';
import { renderHtmlReport } from './load/report/html.js';
import type { HarnessReport, ReportSettings } from './load/report/model.js';
import { renderTerminalReport } from './load/report/terminal.js';
import { prepareSubject } from './load/subject-setup.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function wrapAvailable(): boolean {
  return typeof (PostgresCache.prototype as unknown as { wrap?: unknown }).wrap === 'function';
}

function reportSettings(options: HarnessOptions, wrapShare: number): ReportSettings {
  const { clients, concurrency, durationMs, mix, keys, valueSize, ttlMs, cache, faults, faultIntervalMs } =
    options;
  return {
    clients,
    concurrency,
    durationMs,
    mix,
    wrapShare,
    holdShare: options.holdShare,
    keys,
    valueSize,
    ttlMs,
    cache,
    stalenessBoundMs: options.stalenessBoundMs,
    faults,
    faultIntervalMs,
  };
}

async function openDatabase(display: ProgressDisplay): Promise<HarnessDatabase> {
  display.note(process.env.DATABASE_URL ? 'using DATABASE_URL' : 'starting an embedded PostgreSQL');
  const db = await openHarnessDatabase();
  onCleanup(() => db.close());
  return db;
}

async function main(options: HarnessOptions): Promise<boolean> {
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const display = new ProgressDisplay();
  const db = await openDatabase(display);
  for (const kind of options.faults) {
    const why = unsupportedFault(kind, db, wrapAvailable());
    if (why) throw new Error(why);
  }
  const wrapShare = wrapAvailable() ? options.wrapShare : 0;
  if (wrapShare !== options.wrapShare)
    display.note('PostgresCache has no wrap() in this build: no wrap() calls');
  const runId = `${process.pid}`;
  const place: RunPlace = {
    db,
    runId,
    schema: `pgcache_harness_${runId}`,
    // Per run, so that runs sharing a Redis (--compare) never see each other's keys.
    namespace: `harness-${runId}`,
    redisUrl: REDIS_URL,
    display,
  };
  onCleanup(() => db.admin.query(`DROP SCHEMA IF EXISTS "${place.schema}" CASCADE`));
  const settings: LoadSettings = {
    subject: 'postgres-cache',
    clients: options.clients,
    durationMs: options.durationMs,
    cache: options.cache,
    faults: options.faults,
    faultIntervalMs: options.faultIntervalMs,
    instrumented: true,
    workload: {
      mix: options.mix,
      wrapShare,
      holdShare: options.holdShare,
      keys: options.keys,
      valueSize: options.valueSize,
      ttlMs: options.ttlMs,
      concurrency: options.concurrency,
    },
  };

  await prepareSubject('postgres-cache', place);
  display.note(`running ${options.clients} client processes for ${formatDuration(options.durationMs)}`);
  const run = await runLoad(place, settings);
  display.note('writes stopped, events settled; checking');
  const { figures, assertions } = analyzeRun(run, reportSettings(options, wrapShare));
  const comparison = options.compare ? await runComparison(place, settings, options.rounds) : undefined;

  const report: HarnessReport = {
    generatedAt: new Date().toISOString(),
    command: ['npm run harness --', ...process.argv.slice(2)].join(' '),
    machine: describeMachine(),
    loadAverage: { atStart: loadAtStart, atEnd: loadavg()[0] ?? Number.NaN },
    database: { source: db.source, serverVersion: db.serverVersion },
    settings: reportSettings(options, wrapShare),
    passed: assertions.every((assertion) => assertion.status !== 'failed'),
    assertions,
    run: figures,
    comparison,
  };
  process.stdout.write(renderTerminalReport(report));
  if (options.json) {
    await writeJsonReport(options.json, report);
    display.note(`JSON report: ${options.json}`);
  }
  if (options.html) {
    await mkdir(dirname(options.html), { recursive: true });
    await writeFile(options.html, renderHtmlReport(report));
    display.note(`HTML report: ${options.html}`);
  }
  return report.passed;
}

let options: HarnessOptions | undefined;
try {
  options = parseHarnessOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\nsee --help\n`);
  process.exit(2);
}
if (options) {
  cleanUpOnSignals();
  let passed = false;
  try {
    passed = await main(options);
  } catch (error) {
    process.stderr.write(
      `harness failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  } finally {
    await cleanUp();
  }
  process.exit(passed ? 0 : 1);
}
