/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC on Linux), which every process on the
 * machine reads alike, so the times two harness processes record compare directly. The harness never
 * uses `performance.timeOrigin + performance.now()` across processes: each process takes its origin from
 * the wall clock once, as it starts, and two processes measured here disagreed by up to 2.5 ms; a step of
 * the wall clock after one of them started widens that to the size of the step.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
