import { HELD_GROUP, type OperationRow } from '../metrics/operations.js';
import { HOLD_CAP_MS } from '../version-tap.js';
import { formatDuration, formatMs, formatOps, formatPercent, formatRatio, textTable } from './format.js';
import type {
  AssertionResult,
  Comparison,
  HarnessReport,
  ReportSettings,
  RunFigures,
  StalenessFigures,
} from './model.js';

const MARK = { passed: '✔', failed: '✘', skipped: '–' } as const;

export function describeSettings(settings: ReportSettings): string {
  const { mix } = settings;
  const percent = (share: number) => Math.round(share * 100);
  // A clear is rare: to two decimals, in per cent.
  const clears = Number((mix.clear * 100).toFixed(2));
  return [
    `${settings.clients} clients × ${settings.concurrency} in flight`,
    formatDuration(settings.durationMs),
    `read/write/delete ${percent(mix.read)}/${percent(mix.write)}/${percent(mix.delete)}`,
    mix.clear > 0 ? `clear ${clears} %` : 'no clears',
    `wrap ${percent(settings.wrapShare)} %`,
    settings.holdShare > 0 ? `${percent(settings.holdShare)} % of reads held for an event` : undefined,
    `${settings.keys} keys`,
    `${settings.valueSize}-char values`,
    settings.ttlMs === undefined ? 'no TTL' : `TTL ${formatDuration(settings.ttlMs)}`,
    settings.cache.notifications ? 'notifications on' : 'notifications OFF',
    settings.cache.l1TtlMs === undefined ? undefined : `L1 TTL ${formatDuration(settings.cache.l1TtlMs)}`,
    settings.faults.length > 0
      ? `faults ${settings.faults.join('+')} every ${formatDuration(settings.faultIntervalMs)}`
      : 'no faults',
  ]
    .filter((part) => part !== undefined)
    .join(', ');
}

export function operationsTable(rows: OperationRow[]): string {
  return textTable(
    ['operation', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'n', 'errors'],
    rows.map((row) => [
      row.group,
      formatOps(row.opsPerSec),
      formatMs(row.p50Ms),
      formatMs(row.p95Ms),
      formatMs(row.p99Ms),
      formatMs(row.maxMs),
      String(row.count),
      String(row.errors),
    ]),
  );
}

function assertionLines(assertions: AssertionResult[]): string[] {
  const lines: string[] = [];
  for (const assertion of assertions) {
    lines.push(`  ${MARK[assertion.status]} ${assertion.id}. ${assertion.name}`);
    lines.push(`       ${assertion.summary}`);
    for (const example of assertion.examples) lines.push(`       · ${example}`);
  }
  return lines;
}

function comparisonLines(comparison: Comparison): string[] {
  const lines = ['', `comparison: ${comparison.note}`];
  const groups = ['all', 'read', 'write', 'delete'];
  const rows = comparison.subjects.map((subject) => {
    const cells: string[] = [subject.subject];
    for (const group of groups) {
      const row = subject.operations.find((candidate) => candidate.group === group);
      cells.push(formatOps(row?.opsPerSec ?? Number.NaN), formatMs(row?.p99Ms ?? Number.NaN));
    }
    const [low, high] = subject.opsPerSecRange;
    cells.push(subject.rounds > 1 ? `${formatOps(low)}–${formatOps(high)}` : '');
    return cells;
  });
  const headers = ['subject', ...groups.flatMap((group) => [`${group} ops/s`, 'p99 ms']), 'all ops/s range'];
  lines.push(textTable(headers, rows));
  for (const peer of new Set(comparison.ratios.map((ratio) => ratio.peer))) {
    const parts = comparison.ratios
      .filter((ratio) => ratio.peer === peer)
      .map(
        (ratio) =>
          `${ratio.group} ${formatRatio(ratio.throughput)} throughput, ${formatRatio(ratio.p99)} p99`,
      );
    lines.push(`  postgres-cache vs ${peer}: ${parts.join('; ')}`);
  }
  for (const skip of comparison.skipped) lines.push(`  ${skip.subject}: not run (${skip.reason})`);
  return lines;
}

/** The report as text for the terminal. */
export function renderTerminalReport(report: HarnessReport): string {
  const { run, settings } = report;
  // A fault asked for that never came (a run shorter than its turn) checked nothing: say so.
  const faultText = [
    ...Object.entries(run.faults.counts).map(([kind, count]) => `${kind} ×${count}`),
    ...settings.faults
      .filter((kind) => !(kind in run.faults.counts))
      .map((kind) => `${kind} never ran (lengthen --duration or shorten --fault-interval)`),
  ].join(', ');
  const errorText = Object.entries(run.errorsByCode)
    .map(([code, count]) => `${code} ${count}`)
    .join(', ');
  const lines = [
    '',
    `postgres-cache harness: ${describeSettings(settings)}`,
    `PostgreSQL ${report.database.serverVersion} (${report.database.source}); ${report.machine.cpus} × ${report.machine.cpuModel}; ` +
      `Node ${report.machine.node}; load average ${report.loadAverage.atStart.toFixed(1)} → ${report.loadAverage.atEnd.toFixed(1)}`,
    '',
    operationsTable(run.operations),
    ...heldNote(run),
    '',
    `hit ratios       L1 ${formatPercent(run.hitRatios.l1)} of reads; PostgreSQL ${formatPercent(run.hitRatios.postgres)} of the rest; found ${formatPercent(run.hitRatios.overall)}`,
    `propagation      ${propagationText(run.propagation)}`,
    `staleness        ${stalenessText(run.staleness)}`,
    `cache events     ${run.cache.eventsReceived} received, ${run.cache.eventEvictions} L1 evictions, ${run.cache.refusedFills} stale fills refused, ${run.cache.listenerReconnects} listener reconnects`,
    `faults           ${faultText || 'none'}${faultText ? `; listeners back after p50 ${formatMs(run.faults.recovery.p50Ms)} ms, max ${formatMs(run.faults.recovery.maxMs)} ms` : ''}`,
    `errors           ${errorText || 'none'}`,
    '',
    'assertions',
    ...assertionLines(report.assertions),
    ...(report.comparison ? comparisonLines(report.comparison) : []),
    '',
    verdictLine(report),
    '',
  ];
  return lines.join('\n');
}

/** Why the held reads have a row of their own, when there are any. */
export function heldNote(run: RunFigures): string[] {
  const held = run.operations.find((row) => row.group === HELD_GROUP);
  if (!held) return [];
  return [
    `(${HELD_GROUP}: reads run beside the lanes whose answer from PostgreSQL was held back until their key's next`,
    ` change event, at most ${HOLD_CAP_MS} ms, so that it races the L1 fill (--hold-reads); their times are mostly that wait:`,
    ` they are left out of every other row, "all" too)`,
  ];
}

export function propagationText(propagation: RunFigures['propagation']): string {
  const { events, beforeAck } = propagation;
  if (events === 0) return 'no change events from other processes';
  return (
    `of ${events} change events in other processes, ${formatPercent(beforeAck / events)} arrived before the writer's set() returned; ` +
    `the rest came after it by p50 ${formatMs(propagation.p50Ms)} ms, p95 ${formatMs(propagation.p95Ms)}, ` +
    `p99 ${formatMs(propagation.p99Ms)}, max ${formatMs(propagation.maxMs)}`
  );
}

export function stalenessText(staleness: StalenessFigures): string {
  const bound = `(bound ${staleness.boundMs} ms)`;
  if (staleness.count === 0) return `none of ${staleness.checkedReads} reads stale ${bound}`;
  return `${staleness.count} of ${staleness.checkedReads} reads stale, largest ${formatMs(staleness.maxMs)} ms ${bound}`;
}

export function verdictLine(report: HarnessReport): string {
  const count = (status: AssertionResult['status']) =>
    report.assertions.filter((assertion) => assertion.status === status).length;
  const tally = `${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`;
  return `${report.passed ? 'PASSED' : 'FAILED'}: ${tally}`;
}
