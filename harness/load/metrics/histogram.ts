export interface Histogram {
  label: string;
  /** Bin i holds values in [edgesMs[i], edgesMs[i + 1]). */
  edgesMs: number[];
  counts: number[];
}

/** Four bins per decade from 10 µs to 100 s: latencies, staleness and delays all fit one scale. */
export const LOG_EDGES_MS: number[] = Array.from({ length: 29 }, (_, index) => 10 ** (-2 + index / 4));

/** Counts values into logarithmic bins; values below the first edge go to the first bin, above the last to the last. */
export function histogram(label: string, valuesMs: number[], edgesMs: number[] = LOG_EDGES_MS): Histogram {
  const counts = new Array<number>(edgesMs.length - 1).fill(0);
  for (const value of valuesMs) {
    let bin = 0;
    while (bin < counts.length - 1 && value >= (edgesMs[bin + 1] as number)) bin++;
    counts[bin] = (counts[bin] ?? 0) + 1;
  }
  return { label, edgesMs, counts };
}

/** The histogram without its empty bins at either end (at least one bin kept). */
export function trimmed(histogram: Histogram): Histogram {
  const first = histogram.counts.findIndex((count) => count > 0);
  if (first < 0) return histogram;
  let last = histogram.counts.length - 1;
  while (last > first && histogram.counts[last] === 0) last--;
  return {
    label: histogram.label,
    edgesMs: histogram.edgesMs.slice(first, last + 2),
    counts: histogram.counts.slice(first, last + 1),
  };
}
