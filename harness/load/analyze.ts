import type { CacheStats } from '../../src/index.js';
import { checkConvergence } from './assertions/convergence.js';
import { checkListenerFaults, FaultWindows } from './assertions/fault-windows.js';
import { buildHistory } from './assertions/history.js';
import { checkReads, type Findings } from './assertions/reads.js';
import { checkStampede } from './assertions/stampede.js';
import type { LoadRun } from './coordinator.js';
import { histogram, trimmed } from './metrics/histogram.js';
import { errorsByCode, groupSamples, hitRatios, operationRows } from './metrics/operations.js';
import { propagationDelays } from './metrics/propagation.js';
import { summarize } from './metrics/summary.js';
import { throughputTimeline } from './metrics/timeline.js';
import { formatMs } from './report/format.js';
import type {
  AssertionResult,
  CacheTotals,
  ReportSettings,
  RunFigures,
  SubjectFigures,
} from './report/model.js';
import type { SettledState } from './settle.js';

const ms = (value: number) => `${formatMs(value)} ms`;

/** Groups drawn as latency histograms: the tiers and operations, not their sums. */
const HISTOGRAM_GROUPS = new Set([
  'read · L1 hit',
  'read · postgres hit',
  'read · postgres miss',
  'write',
  'delete',
  'wrap · cached',
  'wrap · ran loader',
]);

/** Throughput and latency of any subject's run. */
export function subjectFigures(run: LoadRun, samples = groupSamples(run.logs)): SubjectFigures {
  const durationMs = run.endAt - run.startAt;
  return {
    subject: run.subject,
    durationMs,
    operations: operationRows(samples, durationMs),
    errorsByCode: errorsByCode(run.logs),
  };
}

/** Figures and the four assertions of a postgres-cache run. */
export function analyzeRun(
  run: LoadRun,
  settings: ReportSettings,
): { figures: RunFigures; assertions: AssertionResult[] } {
  const samples = groupSamples(run.logs);
  const base = subjectFigures(run, samples);
  const history = buildHistory([run.prefill, ...run.logs]);
  const windows = new FaultWindows(run.faults, run.logs);
  const reads = checkReads(run.logs, history, windows, settings.stalenessBoundMs, settings.ttlMs);
  const listenerFaults = checkListenerFaults(run.faults, run.logs);
  const staleness = summarize(reads.staleness);
  const propagation = propagationDelays(run.logs, history);
  const { delaysMs, ...propagationStats } = propagation;
  const convergence = run.settled ? checkConvergence(run.settled) : undefined;
  const stampede = checkStampede(run.logs, settings.wrapShare, run.faults);

  const assertions: AssertionResult[] = [
    verdict(
      1,
      'read-your-writes inside each process',
      reads.readYourWrites,
      reads.checked,
      `${reads.checked} reads checked; ${reads.readYourWrites.count} missed their own process's acknowledged change`,
    ),
    verdict(
      2,
      `bounded staleness across processes (bound ${settings.stalenessBoundMs} ms)`,
      merged(merged(reads.beyondBound, reads.phantoms), listenerFaults),
      reads.checked,
      (staleness.count === 0
        ? `none of ${reads.checked} reads stale; `
        : `${staleness.count} of ${reads.checked} reads stale; largest ${ms(staleness.maxMs)}, p99 ${ms(staleness.p99Ms)}; `) +
        `${reads.beyondBound.count} beyond the bound, ${reads.phantoms.count} of a value nobody wrote` +
        (listenerFaults.count > 0
          ? `; ${listenerFaults.count} listener faults unheard or L1 reads while the listener was down`
          : '') +
        (reads.unverifiable > 0 ? `; ${reads.unverifiable} of a failed write (not checked)` : ''),
    ),
    convergence
      ? verdict(
          3,
          'convergence: every L1 agrees with the table after writes stop',
          {
            count: convergence.mismatches.count + convergence.notListening.length,
            examples: [
              ...convergence.notListening.map((client) => `client ${client} was not listening at the fence`),
              ...convergence.mismatches.examples,
            ],
          },
          convergence.clients,
          `${convergence.entries} L1 entries in ${convergence.clients} clients compared with the table; ` +
            `${convergence.mismatches.count} differ`,
        )
      : skipped(3, 'convergence: every L1 agrees with the table after writes stop', 'no settle state'),
    stampede.result,
  ];

  const figures: RunFigures = {
    ...base,
    hitRatios: hitRatios(run.logs),
    staleness: {
      ...staleness,
      boundMs: settings.stalenessBoundMs,
      checkedReads: reads.checked,
      unverifiableReads: reads.unverifiable,
    },
    propagation: propagationStats,
    convergence: {
      entries: convergence?.entries ?? 0,
      clients: convergence?.clients ?? 0,
      fenceAttempts: run.settled?.attempts ?? 0,
    },
    stampede: stampede.figures,
    faults: {
      counts: countBy(run.faults.map((fault) => fault.kind)),
      events: run.faults.map((fault) => ({
        kind: fault.kind,
        atMs: fault.at - run.startAt,
        tookMs: fault.done - fault.at,
        detail: fault.detail,
        error: fault.error,
      })),
      recovery: summarize(windows.all().map((window) => window.end - window.start)),
    },
    cache: cacheTotals(run.settled),
    timeline: throughputTimeline(run.logs, run.startAt, base.durationMs),
    faultMarksMs: run.faults.map((fault) => ({ atMs: fault.at - run.startAt, kind: fault.kind })),
    latencyHistograms: samples
      .filter((sample) => HISTOGRAM_GROUPS.has(sample.group) && sample.latencies.length > 0)
      .map((sample) => trimmed(histogram(sample.group, sample.latencies))),
    stalenessHistogram: trimmed(histogram('staleness of stale reads', reads.staleness)),
    propagationHistogram: trimmed(
      histogram(`change event after the writer's ack (${propagation.beforeAck} came before it)`, delaysMs),
    ),
  };
  return { figures, assertions };
}

function verdict(
  id: number,
  name: string,
  failures: Findings,
  checked: number,
  summary: string,
): AssertionResult {
  if (checked === 0) {
    return {
      id,
      name,
      status: 'failed',
      summary: 'nothing could be checked (no successful operations)',
      examples: [],
    };
  }
  return {
    id,
    name,
    status: failures.count === 0 ? 'passed' : 'failed',
    summary,
    examples: failures.examples,
  };
}

function skipped(id: number, name: string, why: string): AssertionResult {
  return { id, name, status: 'skipped', summary: why, examples: [] };
}

function merged(a: Findings, b: Findings): Findings {
  return { count: a.count + b.count, examples: [...a.examples, ...b.examples] };
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function cacheTotals(settled: SettledState | undefined): CacheTotals {
  const totals: CacheTotals = {
    l1Hits: 0,
    l1Misses: 0,
    eventsReceived: 0,
    eventEvictions: 0,
    flushEvictions: 0,
    refusedFills: 0,
    listenerReconnects: 0,
  };
  for (const reply of settled?.replies.values() ?? []) {
    const stats: CacheStats | undefined = reply.stats;
    if (!stats) continue;
    totals.l1Hits += stats.l1.hits;
    totals.l1Misses += stats.l1.misses;
    totals.eventsReceived += stats.events.received;
    totals.eventEvictions += stats.evictions.event;
    totals.flushEvictions += stats.evictions.flush;
    totals.refusedFills += stats.refusedFills;
    totals.listenerReconnects += stats.listener.reconnects;
  }
  return totals;
}
