import { LatencyRecorder } from './latency.js';

/** One operation of a load; `index` grows by one per call over warm-up and measurement together. */
export type Operation = (index: number) => Promise<unknown>;

export interface LoadOptions {
  /** Operations in flight at once. Default 32. */
  concurrency?: number;
  /** Upper bound on measured operations. */
  ops: number;
  /** Upper bound on the measured phase, in ms: it stops starting operations after this. Default 30000. */
  durationMs?: number;
  /** Operations run (and not measured) before the measurement. Default min(10% of ops, 1000). */
  warmupOps?: number;
  /** Upper bound on the warm-up, in ms. Default 3000. */
  warmupMs?: number;
  /** Called between warm-up and measurement (e.g. to start a server-side sampler); not timed. */
  beforeMeasure?: () => Promise<void>;
  /** Called right after the measurement; not timed. */
  afterMeasure?: () => Promise<void>;
}

export interface LoadResult {
  /** Operations that completed without error in the measured phase. */
  ops: number;
  /** Operations that threw, warm-up included. */
  errors: number;
  firstError?: string | undefined;
  elapsedMs: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /**
   * CPU time this process (the client: driver, Keyv, the load loop) spent per measured operation, in
   * microseconds, and as a share of one core over the measured phase (100 = one core busy).
   */
  clientCpuUsPerOp: number;
  clientCpuPercent: number;
}

interface PhaseOutcome {
  completed: number;
  errors: number;
  firstError: string | undefined;
  elapsedNs: bigint;
  cpuUs: number;
  nextIndex: number;
}

async function runPhase(
  op: Operation,
  concurrency: number,
  maxOps: number,
  maxMs: number,
  firstIndex: number,
  recorder: LatencyRecorder | undefined,
): Promise<PhaseOutcome> {
  let issued = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(maxMs * 1e6));

  const worker = async () => {
    while (issued < maxOps && process.hrtime.bigint() < deadline) {
      const index = firstIndex + issued++;
      const t0 = process.hrtime.bigint();
      try {
        await op(index);
        recorder?.record(t0, process.hrtime.bigint());
        completed++;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  const elapsedNs = process.hrtime.bigint() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    completed,
    errors,
    firstError,
    elapsedNs,
    cpuUs: cpu.user + cpu.system,
    nextIndex: firstIndex + issued,
  };
}

/**
 * Runs `op` with a fixed number of operations in flight, first a short unmeasured warm-up, then the
 * measurement, which stops at `ops` operations or `durationMs`, whichever comes first.
 */
export async function runLoad(op: Operation, options: LoadOptions): Promise<LoadResult> {
  const concurrency = options.concurrency ?? 32;
  const warmupOps = options.warmupOps ?? Math.min(Math.ceil(options.ops / 10), 1000);
  const warmup = await runPhase(op, concurrency, warmupOps, options.warmupMs ?? 3000, 0, undefined);
  const recorder = new LatencyRecorder(options.ops);
  await options.beforeMeasure?.();
  const measured = await runPhase(
    op,
    concurrency,
    options.ops,
    options.durationMs ?? 30_000,
    warmup.nextIndex,
    recorder,
  );
  await options.afterMeasure?.();
  const elapsedMs = Number(measured.elapsedNs) / 1e6;
  const latency = recorder.summary();
  return {
    ops: measured.completed,
    errors: warmup.errors + measured.errors,
    firstError: warmup.firstError ?? measured.firstError,
    elapsedMs,
    opsPerSec: elapsedMs > 0 ? (measured.completed * 1000) / elapsedMs : 0,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    maxMs: latency.maxMs,
    meanMs: latency.meanMs,
    ...cpuShare(measured.cpuUs, measured.completed, elapsedMs),
  };
}

function cpuShare(cpuUs: number, ops: number, elapsedMs: number) {
  return {
    clientCpuUsPerOp: ops > 0 ? cpuUs / ops : Number.NaN,
    clientCpuPercent: elapsedMs > 0 ? cpuUs / 10 / elapsedMs : Number.NaN,
  };
}

/**
 * Times one operation at a time, `repetitions` times, with an untimed `setup` before each
 * (for operations too heavy or destructive to run under load, such as clearing a namespace).
 */
export async function measureEach(
  repetitions: number,
  setup: (repetition: number) => Promise<unknown>,
  op: (repetition: number) => Promise<unknown>,
  hooks: Pick<LoadOptions, 'beforeMeasure' | 'afterMeasure'> = {},
): Promise<LoadResult> {
  const recorder = new LatencyRecorder(repetitions);
  let errors = 0;
  let firstError: string | undefined;
  let totalNs = 0n;
  let cpuUs = 0;
  for (let repetition = 0; repetition < repetitions; repetition++) {
    await setup(repetition);
    await hooks.beforeMeasure?.();
    const cpuBefore = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    try {
      await op(repetition);
      const t1 = process.hrtime.bigint();
      const cpu = process.cpuUsage(cpuBefore);
      cpuUs += cpu.user + cpu.system;
      recorder.record(t0, t1);
      totalNs += t1 - t0;
    } catch (error) {
      errors++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
    await hooks.afterMeasure?.();
  }
  const latency = recorder.summary();
  const elapsedMs = Number(totalNs) / 1e6;
  return {
    ops: recorder.size,
    errors,
    firstError,
    elapsedMs,
    opsPerSec: elapsedMs > 0 ? (recorder.size * 1000) / elapsedMs : 0,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    maxMs: latency.maxMs,
    meanMs: latency.meanMs,
    ...cpuShare(cpuUs, recorder.size, elapsedMs),
  };
}

/**
 * Combines repeated measurements of one subject: every figure is the median over the rounds (so one
 * disturbed round does not move the result), operations and errors are summed.
 */
export function medianOfRounds(
  rounds: LoadResult[],
): LoadResult & { rounds: number; opsPerSecRange: [number, number] } {
  const median = (pick: (result: LoadResult) => number) => {
    const sorted = rounds.map(pick).sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    if (sorted.length === 0) return Number.NaN;
    return sorted.length % 2 === 1
      ? (sorted[middle] ?? Number.NaN)
      : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
  };
  const throughputs = rounds.map((result) => result.opsPerSec);
  return {
    rounds: rounds.length,
    ops: rounds.reduce((sum, result) => sum + result.ops, 0),
    errors: rounds.reduce((sum, result) => sum + result.errors, 0),
    firstError: rounds.find((result) => result.firstError !== undefined)?.firstError,
    elapsedMs: rounds.reduce((sum, result) => sum + result.elapsedMs, 0),
    opsPerSec: median((result) => result.opsPerSec),
    opsPerSecRange: [Math.min(...throughputs), Math.max(...throughputs)],
    p50Ms: median((result) => result.p50Ms),
    p99Ms: median((result) => result.p99Ms),
    maxMs: Math.max(...rounds.map((result) => result.maxMs)),
    meanMs: median((result) => result.meanMs),
    clientCpuUsPerOp: median((result) => result.clientCpuUsPerOp),
    clientCpuPercent: median((result) => result.clientCpuPercent),
  };
}

/** Round r of a comparison measures the subjects starting from subject r (mod n), so none is always first or last. */
export const rotated = <T>(items: readonly T[], round: number): T[] =>
  items.map((_, i) => items[(i + round) % items.length] as T);
