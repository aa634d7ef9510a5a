import { machineBusyCpuUs } from './proc.js';

export interface QuietOptions {
  /** Give up after this long and go on anyway. */
  maxWaitMs: number;
  /** Quiet means: other processes use less than this share of one core. Default 20. */
  thresholdPercent?: number;
  /** Length of one sample. Default 300 ms. */
  windowMs?: number;
}

export interface QuietOutcome {
  quiet: boolean;
  waitedMs: number;
  /** Share of one core that other processes used in the last sample; undefined without /proc. */
  otherPercent: number | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the rest of the machine (everything but this process) is nearly idle, for benchmarks on
 * shared machines. Returns at once where /proc/stat cannot be read.
 */
export async function waitForQuiet(options: QuietOptions): Promise<QuietOutcome> {
  const threshold = options.thresholdPercent ?? 20;
  const windowMs = options.windowMs ?? 300;
  const started = Date.now();
  let otherPercent: number | undefined;
  for (;;) {
    const machineBefore = await machineBusyCpuUs();
    if (machineBefore === undefined) return { quiet: true, waitedMs: 0, otherPercent: undefined };
    const ownBefore = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await sleep(windowMs);
    const own = process.cpuUsage(ownBefore);
    const elapsedUs = Number(process.hrtime.bigint() - t0) / 1000;
    const machineAfter = (await machineBusyCpuUs()) ?? machineBefore;
    otherPercent = (Math.max(0, machineAfter - machineBefore - own.user - own.system) * 100) / elapsedUs;
    const waitedMs = Date.now() - started;
    if (otherPercent < threshold) return { quiet: true, waitedMs, otherPercent };
    if (waitedMs >= options.maxWaitMs) return { quiet: false, waitedMs, otherPercent };
  }
}
