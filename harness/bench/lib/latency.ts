/** Latencies of one measurement, kept in nanoseconds, summarised in milliseconds. */
export class LatencyRecorder {
  private samples: Float64Array;
  private count = 0;

  constructor(expected = 1024) {
    this.samples = new Float64Array(Math.max(16, expected));
  }

  /** Records one latency measured with `process.hrtime.bigint()`. */
  record(startNs: bigint, endNs: bigint): void {
    if (this.count === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.count++] = Number(endNs - startNs);
  }

  get size(): number {
    return this.count;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.count).sort();
    const toMs = (ns: number) => ns / 1e6;
    let total = 0;
    for (const sample of sorted) total += sample;
    return {
      count: this.count,
      p50Ms: toMs(percentile(sorted, 0.5)),
      p99Ms: toMs(percentile(sorted, 0.99)),
      maxMs: toMs(sorted[sorted.length - 1] ?? Number.NaN),
      meanMs: this.count > 0 ? toMs(total / this.count) : Number.NaN,
    };
  }
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Nearest-rank percentile of sorted samples; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}
