import { parseArgs } from 'node:util';
import type { CacheSettings } from './protocol.js';
import { HOLD_CAP_MS } from './version-tap.js';

export const FAULT_KINDS = ['kill-listeners', 'restart-postgres', 'kill-lock-holder'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Shares of the non-wrap operations; they are weights, normalised to 1. */
export interface OperationMix {
  read: number;
  write: number;
  delete: number;
  /** clear(): empties the whole namespace, in every process. */
  clear: number;
}

export interface HarnessOptions {
  /** Client processes. */
  clients: number;
  /** Operations in flight per client process. */
  concurrency: number;
  durationMs: number;
  mix: OperationMix;
  /** Share of all operations that are `wrap()` calls on cold keys (0..1). */
  wrapShare: number;
  /** Share of reads run beside the lanes, whose answer from PostgreSQL is held for the key's next change event (0..1). */
  holdShare: number;
  keys: number;
  /** Characters of each value (before Keyv's JSON envelope). */
  valueSize: number;
  /** TTL of each write in ms; undefined writes without expiry. */
  ttlMs: number | undefined;
  cache: CacheSettings;
  stalenessBoundMs: number;
  faults: FaultKind[];
  faultIntervalMs: number;
  compare: boolean;
  /** Comparison rounds, subjects in rotated order each round; the median round is reported. */
  rounds: number;
  json: string | undefined;
  html: string | undefined;
  quick: boolean;
}

export const USAGE = `npm run harness -- [options]

  --clients N            client processes (default 8; quick 4)
  --concurrency N        operations in flight per client (default 2)
  --duration T           how long the workload runs (default 15s; quick 5s)
  --read W --write W --delete W --clear W
                         operation weights (default 80 / 15 / 5 / 0.05); half of the writes and deletes
                         are followed at once by a read of their key (read-your-writes; a row of their
                         own, out of the hit ratios); a clear()
                         empties the whole namespace in every process (0.05: about one in 2 000 operations)
  --wrap-share F         share of operations that are wrap() calls on cold keys, 0..1 or N% (default 5%)
  --hold-reads F         share of reads run beside the lanes whose answer from PostgreSQL is held back
                         until the key's next change event reaches that process (at most ${HOLD_CAP_MS} ms), so
                         that the event races the read's L1 fill (the fill guard); 0..1 or N% (default
                         15%, 0 turns it off). Held reads are not latency: they are left out of every
                         latency row ("all" too) and counted in "read · held (not latency)"
  --keys N               distinct keys (default 1000; quick 200)
  --value-size N         characters per value (default 256)
  --ttl T                TTL of every write, 0 for none (default 30s)
  --l1-max N             L1 entries per client (default 10000)
  --l1-ttl T             longest an entry stays in L1 (default: its row's expiry)
  --notifications on|off LISTEN for changes (default on); off turns L1 off unless --l1-ttl gives it a ttl (then stale up to it)
  --staleness-bound T    largest staleness allowed across processes (default 1000ms)
  --faults LIST          comma-separated: ${FAULT_KINDS.join(', ')} (quick: kill-listeners,kill-lock-holder)
  --fault-interval T     time between faults (default 3s; quick 1.5s)
  --compare              then run the same workload through @keyv/postgres and @keyv/redis (if reachable)
  --rounds N             comparison rounds, subjects in rotated order, median round reported (default 1)
  --json FILE            write the report as JSON
  --html FILE            write the report as a self-contained HTML page
  --quick                the short configuration CI runs
  --help

Times take ms, s or m (a bare number is ms). Without DATABASE_URL an embedded PostgreSQL is started.`;

/**
 * A clear empties the namespace in every process; the keys come back only as they are written again. Rare,
 * so that most reads still find a value: at the default mix about one operation in 2 000.
 */
export const DEFAULT_CLEAR_WEIGHT = 0.05;

/** "1500", "1500ms", "1.5s", "2m" → milliseconds. */
export function parseDuration(name: string, raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!match) throw new Error(`--${name} needs a time such as 500ms, 5s or 1m; got ${raw}`);
  const factor = { ms: 1, s: 1000, m: 60_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm'];
  return Math.round(Number(match[1]) * factor);
}

function parseCount(name: string, raw: string, min = 1): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`--${name} needs an integer >= ${min}; got ${raw}`);
  return value;
}

function parseWeight(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`--${name} needs a non-negative number; got ${raw}`);
  return value;
}

function parseShare(name: string, raw: string): number {
  const percent = raw.endsWith('%');
  const value = Number(percent ? raw.slice(0, -1) : raw) / (percent ? 100 : 1);
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new Error(`--${name} needs a fraction 0..1 or a percentage; got ${raw}`);
  }
  return value;
}

function parseSwitch(name: string, raw: string): boolean {
  if (raw === 'on' || raw === 'off') return raw === 'on';
  throw new Error(`--${name} takes on or off; got ${raw}`);
}

function parseFaults(raw: string): FaultKind[] {
  if (raw === '' || raw === 'none') return [];
  return raw.split(',').map((name) => {
    const kind = name.trim() as FaultKind;
    if (!FAULT_KINDS.includes(kind))
      throw new Error(`--faults: unknown fault ${name}; known: ${FAULT_KINDS.join(', ')}`);
    return kind;
  });
}

/** Parses the command line; returns undefined after printing the usage for --help. */
export function parseHarnessOptions(argv: string[]): HarnessOptions | undefined {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      clients: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      read: { type: 'string' },
      write: { type: 'string' },
      delete: { type: 'string' },
      clear: { type: 'string' },
      'wrap-share': { type: 'string' },
      'hold-reads': { type: 'string' },
      keys: { type: 'string' },
      'value-size': { type: 'string' },
      ttl: { type: 'string' },
      'l1-max': { type: 'string' },
      'l1-ttl': { type: 'string' },
      notifications: { type: 'string' },
      'staleness-bound': { type: 'string' },
      faults: { type: 'string' },
      'fault-interval': { type: 'string' },
      compare: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      json: { type: 'string' },
      html: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const quick = v.quick === true;
  const mix = {
    read: v.read === undefined ? 80 : parseWeight('read', v.read),
    write: v.write === undefined ? 15 : parseWeight('write', v.write),
    delete: v.delete === undefined ? 5 : parseWeight('delete', v.delete),
    clear: v.clear === undefined ? DEFAULT_CLEAR_WEIGHT : parseWeight('clear', v.clear),
  };
  const total = mix.read + mix.write + mix.delete + mix.clear;
  if (total <= 0) throw new Error('--read, --write, --delete and --clear cannot all be 0');
  const ttlMs = v.ttl === undefined ? 30_000 : parseDuration('ttl', v.ttl);
  return {
    clients: v.clients === undefined ? (quick ? 4 : 8) : parseCount('clients', v.clients, 2),
    concurrency: v.concurrency === undefined ? 2 : parseCount('concurrency', v.concurrency),
    durationMs: v.duration === undefined ? (quick ? 5000 : 15_000) : parseDuration('duration', v.duration),
    mix: {
      read: mix.read / total,
      write: mix.write / total,
      delete: mix.delete / total,
      clear: mix.clear / total,
    },
    wrapShare: v['wrap-share'] === undefined ? 0.05 : parseShare('wrap-share', v['wrap-share']),
    holdShare: v['hold-reads'] === undefined ? 0.15 : parseShare('hold-reads', v['hold-reads']),
    keys: v.keys === undefined ? (quick ? 200 : 1000) : parseCount('keys', v.keys),
    valueSize: v['value-size'] === undefined ? 256 : parseCount('value-size', v['value-size'], 16),
    ttlMs: ttlMs === 0 ? undefined : ttlMs,
    cache: {
      l1Max: v['l1-max'] === undefined ? 10_000 : parseCount('l1-max', v['l1-max']),
      l1TtlMs: v['l1-ttl'] === undefined ? undefined : parseDuration('l1-ttl', v['l1-ttl']),
      notifications: parseSwitch('notifications', v.notifications ?? 'on'),
    },
    stalenessBoundMs:
      v['staleness-bound'] === undefined ? 1000 : parseDuration('staleness-bound', v['staleness-bound']),
    faults:
      v.faults === undefined ? (quick ? ['kill-listeners', 'kill-lock-holder'] : []) : parseFaults(v.faults),
    faultIntervalMs:
      v['fault-interval'] === undefined
        ? quick
          ? 1500
          : 3000
        : parseDuration('fault-interval', v['fault-interval']),
    compare: v.compare === true,
    rounds: v.rounds === undefined ? 1 : parseCount('rounds', v.rounds),
    json: v.json,
    html: v.html,
    quick,
  };
}
