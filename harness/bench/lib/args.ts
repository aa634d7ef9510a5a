import { basename } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
export type FlagValues = Record<string, string | boolean | undefined>;

const SCRIPTS: Record<string, string> = {
  adapter: 'bench:adapter',
  store: 'bench:store',
  wrap: 'bench:wrap',
  'table-invalidation': 'bench:invalidation',
};

/**
 * Node's parseArgs with `--help`, and a mistake in the flags (an unknown one, a bad number) answered with
 * its message and the usage on stderr, exit code 2, rather than a stack trace.
 */
export function parseOrExit<T>(
  options: Options,
  usage: string,
  argv: string[],
  read: (values: FlagValues) => T,
): T {
  const name = basename(process.argv[1] ?? '', '.ts');
  const script = `npm run ${SCRIPTS[name] ?? name} --`;
  const fail = (error: unknown): never => {
    process.stderr.write(`${script}: ${error instanceof Error ? error.message : String(error)}\n${usage}`);
    process.exit(2);
  };
  let values: FlagValues = {};
  try {
    values = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean' } },
      strict: true,
    }).values;
  } catch (error) {
    fail(error);
  }
  if (values.help) {
    process.stdout.write(`usage: ${script} [options]\n${usage}`);
    process.exit(0);
  }
  try {
    return read(values);
  } catch (error) {
    return fail(error);
  }
}

const BENCH_USAGE = `  --quick          smaller data sets, fewer operations and rounds
  --ops N          measured operations per load scenario
  --concurrency N  operations in flight (default 32)
  --duration MS    upper bound per load scenario (default 20000)
  --rounds N       measurements per subject and scenario, median reported
  --wait-quiet S   before each measurement, wait up to S seconds for the machine to go quiet
  --json FILE      also write the report as JSON
  --help           this text
`;

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
  const options: Options = {
    ops: { type: 'string' },
    concurrency: { type: 'string' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'wait-quiet': { type: 'string' },
  };
  return parseOrExit(options, BENCH_USAGE, argv, (values) => benchArgsOf(values, defaults));
}

function benchArgsOf(values: FlagValues, defaults: ArgDefaults): BenchArgs {
  const quick = values.quick === true;
  return {
    ops: positive('ops', text(values.ops), quick ? defaults.quickOps : defaults.ops),
    concurrency: positive('concurrency', text(values.concurrency), defaults.concurrency ?? 32),
    durationMs: positive('duration', text(values.duration), defaults.durationMs ?? 20_000),
    rounds: positive(
      'rounds',
      text(values.rounds),
      quick ? (defaults.quickRounds ?? 1) : (defaults.rounds ?? 3),
    ),
    quick,
    json: text(values.json),
    waitQuietMs:
      values['wait-quiet'] === undefined
        ? 0
        : nonNegative('wait-quiet', text(values['wait-quiet']) ?? '') * 1000,
  };
}

const text = (value: string | boolean | undefined) => (typeof value === 'string' ? value : undefined);
