import type { ClientLog } from '../collector.js';
import type { OpKind } from '../protocol.js';

export interface Series {
  name: string;
  /** One value per bin: operations per second. */
  values: number[];
}

export interface Timeline {
  binMs: number;
  series: Series[];
}

const KINDS: OpKind[] = ['read', 'write', 'delete', 'clear', 'wrap'];

/** A bin width that gives roughly 100 bins, rounded to 100 ms. */
function binWidth(durationMs: number): number {
  return Math.max(100, Math.round(durationMs / 100 / 100) * 100);
}

/** Throughput over the run: completed operations per second of each kind, and errors, per bin. */
export function throughputTimeline(logs: ClientLog[], startAt: number, durationMs: number): Timeline {
  const binMs = binWidth(durationMs);
  const bins = Math.ceil(durationMs / binMs);
  const counts = new Map<string, number[]>();
  const series = (name: string) => {
    let values = counts.get(name);
    if (!values) {
      values = new Array<number>(bins).fill(0);
      counts.set(name, values);
    }
    return values;
  };
  for (const log of logs) {
    for (const op of log.ops) {
      const bin = Math.floor((op.end - startAt) / binMs);
      if (bin < 0 || bin >= bins) continue;
      const values = series(op.error === undefined ? op.kind : 'errors');
      values[bin] = (values[bin] ?? 0) + 1;
    }
  }
  const perSecond = (values: number[]) => values.map((count) => (count * 1000) / binMs);
  const names = [...KINDS, 'errors'].filter((name) => counts.has(name));
  return { binMs, series: names.map((name) => ({ name, values: perSecond(series(name)) })) };
}
