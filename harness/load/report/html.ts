import type { OperationRow } from '../metrics/operations.js';
import { formatMs, formatOps, formatPercent, formatRatio } from './format.js';
import type { Comparison, HarnessReport } from './model.js';
import { barChart, escapeXml as esc, histogramChart, lineChart, PALETTE } from './svg.js';
import { describeSettings, heldNote, propagationText, stalenessText, verdictLine } from './terminal.js';

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; color: #111827; margin: 24px auto; max-width: 920px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; }
.meta { color: #4b5563; font-size: 13px; }
.verdict { display: inline-block; padding: 4px 10px; border-radius: 4px; font-weight: 600; color: white; }
.passed { background: #16a34a; } .failed { background: #dc2626; } .skipped { background: #6b7280; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid #f3f4f6; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; } th { background: #f9fafb; font-weight: 600; }
ul.assertions { list-style: none; padding: 0; } ul.assertions li { margin: 10px 0; }
ul.assertions .summary { color: #374151; margin-left: 4px; } ul.assertions .example { color: #991b1b; font-family: ui-monospace, monospace; font-size: 12px; margin-left: 24px; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
svg { background: #fff; } svg .grid { stroke: #e5e7eb; } svg .tick { font-size: 10px; fill: #4b5563; }
svg .axis-label { font-size: 11px; fill: #374151; } svg .chart-title { font-size: 12px; font-weight: 600; fill: #111827; }
svg .legend { font-size: 11px; fill: #111827; } svg .mark-label { font-size: 10px; fill: #dc2626; } svg .mark { stroke: #dc2626; stroke-dasharray: 4 3; stroke-width: 1.2; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px; } dt { color: #4b5563; }
`;

function operationsTable(rows: OperationRow[]): string {
  const body = rows
    .map(
      (row) =>
        `<tr><td>${esc(row.group)}</td><td>${formatOps(row.opsPerSec)}</td><td>${formatMs(row.p50Ms)}</td><td>${formatMs(row.p95Ms)}</td><td>${formatMs(row.p99Ms)}</td><td>${formatMs(row.maxMs)}</td><td>${row.count}</td><td>${row.errors}</td></tr>`,
    )
    .join('\n');
  return `<table><thead><tr><th>operation</th><th>ops/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>n</th><th>errors</th></tr></thead><tbody>${body}</tbody></table>`;
}

function assertionsList(report: HarnessReport): string {
  const items = report.assertions.map((assertion) => {
    const examples = assertion.examples
      .map((example) => `<div class="example">${esc(example)}</div>`)
      .join('');
    return `<li><span class="verdict ${assertion.status}">${assertion.status}</span> <strong>${assertion.id}. ${esc(assertion.name)}</strong><div class="summary">${esc(assertion.summary)}</div>${examples}</li>`;
  });
  return `<ul class="assertions">${items.join('\n')}</ul>`;
}

function consistencyFacts(report: HarnessReport): string {
  const { run } = report;
  const facts: Array<[string, string]> = [
    ['L1 hit ratio', `${formatPercent(run.hitRatios.l1)} of reads`],
    ['PostgreSQL hit ratio', `${formatPercent(run.hitRatios.postgres)} of the reads L1 did not answer`],
    [
      'propagation',
      `${propagationText(run.propagation)} (from its change event on, a process's L1 cannot serve the older value)`,
    ],
    ['staleness', stalenessText(run.staleness)],
    [
      'cache events',
      `${run.cache.eventsReceived} received, ${run.cache.eventEvictions} L1 evictions, ${run.cache.refusedFills} stale fills refused, ${run.cache.listenerReconnects} listener reconnects`,
    ],
    [
      'errors',
      Object.entries(run.errorsByCode)
        .map(([code, count]) => `${code} ${count}`)
        .join(', ') || 'none',
    ],
  ];
  return `<dl>${facts.map(([term, text]) => `<dt>${esc(term)}</dt><dd>${esc(text)}</dd>`).join('')}</dl>`;
}

function faultsSection(report: HarnessReport): string {
  const { faults } = report.run;
  if (faults.events.length === 0) return '<p>No faults injected (<code>--faults</code>).</p>';
  const rows = faults.events
    .map(
      (event) =>
        `<tr><td>${esc(event.kind)}</td><td>${(event.atMs / 1000).toFixed(2)} s</td><td>${formatMs(event.tookMs)}</td><td style="text-align:left">${esc(event.error ?? event.detail)}</td></tr>`,
    )
    .join('\n');
  return `<p>Listeners back after p50 ${formatMs(faults.recovery.p50Ms)} ms, max ${formatMs(faults.recovery.maxMs)} ms (per client and fault).</p>
<table><thead><tr><th>fault</th><th>at</th><th>took ms</th><th style="text-align:left">what happened</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function comparisonSection(comparison: Comparison): string {
  const rows = comparison.subjects.map((subject) => {
    const cell = (group: string) => {
      const row = subject.operations.find((candidate) => candidate.group === group);
      return `<td>${formatOps(row?.opsPerSec ?? Number.NaN)}</td><td>${formatMs(row?.p99Ms ?? Number.NaN)}</td>`;
    };
    const [low, high] = subject.opsPerSecRange;
    const range = subject.rounds > 1 ? `${formatOps(low)}–${formatOps(high)}` : '';
    return `<tr><td>${esc(subject.subject)}</td>${cell('all')}${cell('read')}${cell('write')}<td>${range}</td></tr>`;
  });
  const ratios = comparison.ratios
    .map(
      (ratio) =>
        `<tr><td>vs ${esc(ratio.peer)}</td><td>${esc(ratio.group)}</td><td>${formatRatio(ratio.throughput)}</td><td>${formatRatio(ratio.p99)}</td></tr>`,
    )
    .join('\n');
  const bars = barChart(
    'throughput, all operations (ops/s)',
    comparison.subjects.map((subject) => {
      const all = subject.operations.find((row) => row.group === 'all');
      return {
        label: subject.subject,
        value: all?.opsPerSec ?? 0,
        text: formatOps(all?.opsPerSec ?? Number.NaN),
      };
    }),
  );
  const skipped = comparison.skipped.map(
    (skip) => `<p>${esc(skip.subject)}: not run (${esc(skip.reason)}).</p>`,
  );
  return `<p>${esc(comparison.note)}.</p>${bars}
<table><thead><tr><th>subject</th><th>all ops/s</th><th>p99 ms</th><th>read ops/s</th><th>p99 ms</th><th>write ops/s</th><th>p99 ms</th><th>all ops/s, range over rounds</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>
<table><thead><tr><th>postgres-cache</th><th>operation</th><th>throughput ×</th><th>p99 latency × (lower is better)</th></tr></thead><tbody>${ratios}</tbody></table>${skipped.join('')}`;
}

/** The report as one HTML page: inline CSS and SVG, nothing fetched. */
export function renderHtmlReport(report: HarnessReport): string {
  const { run } = report;
  const throughput = lineChart({
    title: 'throughput over time (all clients)',
    series: run.timeline.series,
    binMs: run.timeline.binMs,
    yLabel: 'ops/s',
    marks: run.faultMarksMs.map((mark) => ({ atMs: mark.atMs, label: mark.kind })),
  });
  const latency = run.latencyHistograms
    .map((histogram, index) => histogramChart(histogram, PALETTE[index % PALETTE.length] as string))
    .join('\n');
  const consistency = [run.stalenessHistogram, run.propagationHistogram]
    .filter((histogram) => histogram.counts.some((count) => count > 0))
    .map((histogram) => histogramChart(histogram, '#ea580c'))
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>postgres-cache harness report</title><style>${STYLE}</style></head>
<body>
<h1>postgres-cache harness report</h1>
<p class="meta">${esc(describeSettings(report.settings))}<br>
PostgreSQL ${esc(report.database.serverVersion)} (${esc(report.database.source)}) · ${report.machine.cpus} × ${esc(report.machine.cpuModel)} · ${report.machine.memoryGiB} GiB · Node ${esc(report.machine.node)} · ${esc(report.machine.os)} · load average ${report.loadAverage.atStart.toFixed(1)} → ${report.loadAverage.atEnd.toFixed(1)}<br>
<code>${esc(report.command)}</code> · ${esc(report.generatedAt)}</p>
<p><span class="verdict ${report.passed ? 'passed' : 'failed'}">${esc(verdictLine(report))}</span></p>
<h2>Assertions</h2>
${assertionsList(report)}
<h2>Operations</h2>
${operationsTable(run.operations)}
${heldNote(run).length > 0 ? `<p>${esc(heldNote(run).join(''))}</p>` : ''}
${throughput}
<h2>Latency by operation and tier</h2>
<div class="charts">${latency}</div>
<h2>Consistency</h2>
${consistencyFacts(report)}
<div class="charts">${consistency}</div>
<h2>Faults</h2>
${faultsSection(report)}
${report.comparison ? `<h2>Comparison</h2>${comparisonSection(report.comparison)}` : ''}
</body></html>
`;
}
