import type { Histogram } from '../metrics/histogram.js';

/** Inline SVG charts for the HTML report: drawn here, no library, no external asset. */

export const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const MARGIN = { top: 24, right: 16, bottom: 36, left: 56 };

/** A round maximum and its ticks (1, 2 or 5 times a power of ten per step). */
function niceScale(max: number, ticks = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / ticks;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 5, 10].find((factor) => factor * power >= rough) ?? 10) * power;
  const values: number[] = [];
  for (let value = 0; value < max + step * 0.999; value += step) values.push(value);
  return values;
}

function compact(value: number): string {
  if (value >= 1_000_000) return `${+(value / 1_000_000).toFixed(1)}M`;
  if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}

function frame(width: number, height: number, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}">
<text x="${MARGIN.left}" y="15" class="chart-title">${escapeXml(title)}</text>
${body}
</svg>`;
}

function yAxis(ticks: number[], plotHeight: number, plotWidth: number, label: string): string {
  const top = ticks[ticks.length - 1] ?? 1;
  const lines = ticks.map((tick) => {
    const y = MARGIN.top + plotHeight - (tick / top) * plotHeight;
    return `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" class="grid"/>
<text x="${MARGIN.left - 6}" y="${y + 4}" text-anchor="end" class="tick">${compact(tick)}</text>`;
  });
  const middle = MARGIN.top + plotHeight / 2;
  return `${lines.join('\n')}
<text transform="translate(14 ${middle}) rotate(-90)" text-anchor="middle" class="axis-label">${escapeXml(label)}</text>`;
}

export interface LineSeries {
  name: string;
  values: number[];
}

export interface Mark {
  atMs: number;
  label: string;
}

/** Lines over time (one point per bin), with a legend and optional vertical marks (faults). */
export function lineChart(options: {
  title: string;
  series: LineSeries[];
  binMs: number;
  yLabel: string;
  marks?: Mark[];
  width?: number;
  height?: number;
}): string {
  const width = options.width ?? 880;
  const height = options.height ?? 280;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const bins = Math.max(1, ...options.series.map((series) => series.values.length));
  const ticks = niceScale(Math.max(0, ...options.series.flatMap((series) => series.values)));
  const top = ticks[ticks.length - 1] ?? 1;
  const totalMs = bins * options.binMs;
  const x = (ms: number) => MARGIN.left + (ms / totalMs) * plotWidth;
  const y = (value: number) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const paths = options.series.map((series, index) => {
    const points = series.values.map(
      (value, bin) => `${x((bin + 0.5) * options.binMs).toFixed(1)},${y(value).toFixed(1)}`,
    );
    return `<polyline points="${points.join(' ')}" fill="none" stroke="${PALETTE[index % PALETTE.length]}" stroke-width="1.6"/>`;
  });
  const seconds = niceScale(totalMs / 1000, 8).filter((second) => second * 1000 <= totalMs);
  const xTicks = seconds.map(
    (second) =>
      `<text x="${x(second * 1000)}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle" class="tick">${second}</text>`,
  );
  const marks = (options.marks ?? []).map(
    (mark) =>
      `<line x1="${x(mark.atMs)}" x2="${x(mark.atMs)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" class="mark"><title>${escapeXml(mark.label)}</title></line>
<text x="${x(mark.atMs) + 3}" y="${MARGIN.top + 28}" class="mark-label">${escapeXml(mark.label)}</text>`,
  );
  const legend = options.series.map((series, index) => {
    const lx = MARGIN.left + 8 + index * 90;
    return `<rect x="${lx}" y="${MARGIN.top + 4}" width="10" height="10" fill="${PALETTE[index % PALETTE.length]}"/>
<text x="${lx + 14}" y="${MARGIN.top + 13}" class="legend">${escapeXml(series.name)}</text>`;
  });
  const body = [
    yAxis(ticks, plotHeight, plotWidth, options.yLabel),
    ...xTicks,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${height - 4}" text-anchor="middle" class="axis-label">seconds since start${options.marks?.length ? ' (dashed: faults)' : ''}</text>`,
    ...marks,
    ...paths,
    ...legend,
  ].join('\n');
  return frame(width, height, options.title, body);
}

function edgeLabel(ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(2)} s`;
  if (ms >= 1) return `${+ms.toPrecision(2)}`;
  return `${+ms.toPrecision(1)}`;
}

/** Bars over logarithmic bins in ms; every other edge labelled. */
export function histogramChart(histogram: Histogram, color: string, width = 420, height = 200): string {
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const ticks = niceScale(Math.max(0, ...histogram.counts));
  const top = ticks[ticks.length - 1] ?? 1;
  const barWidth = plotWidth / Math.max(1, histogram.counts.length);
  const total = histogram.counts.reduce((sum, count) => sum + count, 0);
  const bars = histogram.counts.map((count, bin) => {
    const barHeight = (count / top) * plotHeight;
    const from = histogram.edgesMs[bin] ?? 0;
    const to = histogram.edgesMs[bin + 1] ?? from;
    return `<rect x="${(MARGIN.left + bin * barWidth + 1).toFixed(1)}" y="${(MARGIN.top + plotHeight - barHeight).toFixed(1)}" width="${Math.max(1, barWidth - 2).toFixed(1)}" height="${barHeight.toFixed(1)}" fill="${color}"><title>${edgeLabel(from)}–${edgeLabel(to)} ms: ${count}</title></rect>`;
  });
  const step = histogram.edgesMs.length > 12 ? 2 : 1;
  const labels = histogram.edgesMs
    .map((edge, index) =>
      index % step === 0
        ? `<text x="${(MARGIN.left + index * barWidth).toFixed(1)}" y="${MARGIN.top + plotHeight + 14}" text-anchor="middle" class="tick">${edgeLabel(edge)}</text>`
        : '',
    )
    .filter(Boolean);
  const body = [
    yAxis(ticks, plotHeight, plotWidth, 'count'),
    ...bars,
    ...labels,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${height - 4}" text-anchor="middle" class="axis-label">ms (log scale), n = ${total}</text>`,
  ].join('\n');
  return frame(width, height, histogram.label, body);
}

/** Horizontal bars with their values, for comparing subjects. */
export function barChart(
  title: string,
  items: Array<{ label: string; value: number; text: string }>,
  width = 880,
): string {
  const rowHeight = 26;
  const labelWidth = 170;
  const height = MARGIN.top + items.length * rowHeight + 8;
  const max = Math.max(0, ...items.map((item) => item.value)) || 1;
  const plotWidth = width - labelWidth - 120;
  const rows = items.map((item, index) => {
    const y = MARGIN.top + index * rowHeight;
    const barWidth = (item.value / max) * plotWidth;
    return `<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end" class="legend">${escapeXml(item.label)}</text>
<rect x="${labelWidth}" y="${y + 4}" width="${barWidth.toFixed(1)}" height="${rowHeight - 8}" fill="${PALETTE[index % PALETTE.length]}"/>
<text x="${(labelWidth + barWidth + 6).toFixed(1)}" y="${y + 16}" class="tick">${escapeXml(item.text)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}">
<text x="8" y="15" class="chart-title">${escapeXml(title)}</text>
${rows.join('\n')}
</svg>`;
}
