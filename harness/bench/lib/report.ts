import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** One measured line: a subject under one scenario. */
export interface ResultRow {
  scenario: string;
  subject: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Operations measured (for a repeated single operation: the repetitions). */
  ops?: number;
  errors?: number;
  /** Further columns, printed after p99 in the order they first appear (e.g. a range, client CPU). */
  extra?: Record<string, string>;
}

/** A threshold on ours/peer throughput in one scenario; informational. */
export interface Target {
  scenario: string;
  peer: string;
  min: number;
  /** Which of the baselines it applies to; default: the first. */
  subject?: string;
}

export interface Ratio {
  scenario: string;
  subject: string;
  peer: string;
  /** subject ops/s divided by peer ops/s, measured in the same run. */
  ratio: number;
  target?: number | undefined;
  pass?: boolean | undefined;
}

export interface ReportOptions {
  /** The subject every other subject of a scenario is compared with ("ours"), or several (ours configured two ways). */
  baseline: string | string[];
  targets?: Target[];
  /** Print here instead of stdout (tests, files). */
  write?: (text: string) => void;
}

const opsFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const formatOps = (value: number) => (Number.isFinite(value) ? opsFormat.format(value) : '-');
const formatMs = (value: number) => {
  if (!Number.isFinite(value)) return '-';
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
};
export const formatRatio = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}x` : '-');

/** Ours/peer ratios of every scenario, with the matching target (if any) and whether it is met. */
export function computeRatios(
  rows: ResultRow[],
  options: Pick<ReportOptions, 'baseline' | 'targets'>,
): Ratio[] {
  const ratios: Ratio[] = [];
  const baselines = [options.baseline].flat();
  for (const scenario of unique(rows.map((row) => row.scenario))) {
    const inScenario = rows.filter((row) => row.scenario === scenario);
    for (const ours of inScenario.filter((row) => baselines.includes(row.subject))) {
      for (const peer of inScenario) {
        if (baselines.includes(peer.subject)) continue;
        const ratio = peer.opsPerSec > 0 ? ours.opsPerSec / peer.opsPerSec : Number.NaN;
        const target = options.targets?.find(
          (t) =>
            t.scenario === scenario &&
            t.peer === peer.subject &&
            (t.subject ?? baselines[0]) === ours.subject,
        );
        ratios.push({
          scenario,
          subject: ours.subject,
          peer: peer.subject,
          ratio,
          target: target?.min,
          pass: target ? ratio >= target.min : undefined,
        });
      }
    }
  }
  return ratios;
}

/** Prints a table of rows grouped by scenario, each followed by the baseline's ratio to every peer. */
export function printReport(rows: ResultRow[], options: ReportOptions): Ratio[] {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const ratios = computeRatios(rows, options);
  const extraHeaders = unique(rows.flatMap((row) => Object.keys(row.extra ?? {})));
  const headers = ['scenario', 'subject', 'ops/s', 'p50 ms', 'p99 ms', ...extraHeaders, 'n', 'errors'];
  const table = rows.map((row) => [
    row.scenario,
    row.subject,
    formatOps(row.opsPerSec),
    formatMs(row.p50Ms),
    formatMs(row.p99Ms),
    ...extraHeaders.map((header) => row.extra?.[header] ?? ''),
    row.ops === undefined ? '' : String(row.ops),
    row.errors === undefined ? '' : String(row.errors),
  ]);
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...table.map((cells) => (cells[column] ?? '').length)),
  );
  const leftAligned = new Set([0, 1]);
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        leftAligned.has(column) ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();

  write(`${line(headers)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}\n`);
  let previous: string | undefined;
  for (const [index, cells] of table.entries()) {
    const scenario = rows[index]?.scenario;
    const shown = [...cells];
    if (scenario === previous) shown[0] = '';
    write(`${line(shown)}\n`);
    const next = rows[index + 1]?.scenario;
    if (scenario !== undefined && next !== scenario) {
      const inScenario = ratios.filter((ratio) => ratio.scenario === scenario);
      for (const subject of unique(inScenario.map((ratio) => ratio.subject))) {
        const parts = inScenario
          .filter((ratio) => ratio.subject === subject)
          .map((ratio) => {
            const verdict =
              ratio.target === undefined
                ? ''
                : ` (target >= ${ratio.target}x: ${ratio.pass ? 'PASS' : 'MISS'})`;
            return `${formatRatio(ratio.ratio)} ${ratio.peer}${verdict}`;
          });
        write(`${' '.repeat(2)}${subject} vs: ${parts.join('; ')}\n`);
      }
    }
    previous = scenario;
  }
  return ratios;
}

/** Writes a JSON report (creating its directory). */
export async function writeJsonReport(path: string, payload: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(payload, null, 2)}\n`);
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}
