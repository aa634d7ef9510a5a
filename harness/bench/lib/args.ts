import { parseArgs } from 'node:util';

/** Flags every benchmark understands. */
export interface BenchArgs {
  /** Measured operations per load scenario (`--ops N`). */
  ops: number;
  /** Operations in flight (`--concurrency N`). */
  concurrency: number;
  /** Upper bound per load scenario in ms (`--duration MS`). */
  durationMs: number;
  /** Measurements per subject and scenario, subjects in rotated order, median reported (`--rounds N`). */
  rounds: number;
  /** Smaller data sets and fewer operations (`--quick`). */
  quick: boolean;
  /** Where to write the JSON report (`--json FILE`). */
  json: string | undefined;
  /** Before each measurement, wait up to this long for other processes to go quiet (`--wait-quiet S`); 0 = off. */
  waitQuietMs: number;
}

export interface ArgDefaults {
  ops: number;
  quickOps: number;
  concurrency?: number;
  durationMs?: number;
  rounds?: number;
  quickRounds?: number;
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} needs a positive integer; got ${raw}`);
  return value;
}

function nonNegative(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`--${name} needs a non-negative number; got ${raw}`);
  return value;
}

export function parseBenchArgs(defaults: ArgDefaults, argv: string[] = process.argv.slice(2)): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      ops: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      'wait-quiet': { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  return {
    ops: positive('ops', values.ops, quick ? defaults.quickOps : defaults.ops),
    concurrency: positive('concurrency', values.concurrency, defaults.concurrency ?? 32),
    durationMs: positive('duration', values.duration, defaults.durationMs ?? 20_000),
    rounds: positive('rounds', values.rounds, quick ? (defaults.quickRounds ?? 1) : (defaults.rounds ?? 3)),
    quick,
    json: values.json,
    waitQuietMs:
      values['wait-quiet'] === undefined ? 0 : nonNegative('wait-quiet', values['wait-quiet']) * 1000,
  };
}
