import { percentile } from '../../bench/lib/latency.js';

export interface LatencyStats {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Nearest-rank percentiles of durations in ms (NaN for none). */
export function summarize(valuesMs: number[]): LatencyStats {
  const sorted = Float64Array.from(valuesMs).sort();
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    p50Ms: percentile(sorted, 0.5),
    p95Ms: percentile(sorted, 0.95),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN,
    meanMs: sorted.length > 0 ? total / sorted.length : Number.NaN,
  };
}
