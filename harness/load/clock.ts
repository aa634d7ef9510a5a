/**
 * Milliseconds since the epoch with sub-millisecond resolution. Every harness process stamps its
 * records with this, so timestamps from different processes on one machine compare directly.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
