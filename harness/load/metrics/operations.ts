import type { ClientLog } from '../collector.js';
import type { OpRecord } from '../protocol.js';
import { type LatencyStats, summarize } from './summary.js';

/** One line of the operations table: an operation, or an operation answered by one tier. */
export interface OperationRow extends LatencyStats {
  group: string;
  errors: number;
  /** Successful operations of the group per second of workload, all clients together. */
  opsPerSec: number;
}

export interface HitRatios {
  /** Reads answered by L1, of all successful reads (read-backs of own changes left out). */
  l1: number;
  /** Reads that found the key in PostgreSQL, of those that went there. */
  postgres: number;
  /** Reads that found a value at all. */
  overall: number;
}

/**
 * A read whose answer the version tap held back for the fill guard's race (see tapVersions): its duration is
 * mostly that wait, not latency, so it is left out of every other row ("read" and "all" too) and shown apart.
 */
const held = (op: OpRecord) => op.heldMs !== undefined;
/** A random read of the workload: neither held nor a read-back of an own change (see OpRecord.readBack). */
const read = (op: OpRecord) => op.kind === 'read' && !held(op) && !op.readBack;

/** The row of the held reads: their times include the hold (up to HOLD_CAP_MS), so they are no latency. */
export const HELD_GROUP = 'read · held (not latency)';

/** The groups of the table, in order: each operation, then each tier of it. */
const GROUPS: Array<{ name: string; matches: (op: OpRecord) => boolean }> = [
  { name: 'read', matches: read },
  { name: 'read · L1 hit', matches: (op) => read(op) && op.tier === 'l1' },
  { name: 'read · postgres hit', matches: (op) => read(op) && op.tier === 'postgres' && !!op.seen },
  { name: 'read · postgres miss', matches: (op) => read(op) && op.tier === 'postgres' && !op.seen },
  { name: 'read · store hit', matches: (op) => read(op) && op.tier === 'store' && !!op.seen },
  { name: 'read · store miss', matches: (op) => read(op) && op.tier === 'store' && !op.seen },
  { name: HELD_GROUP, matches: (op) => op.kind === 'read' && held(op) },
  { name: 'read · own change read back', matches: (op) => op.kind === 'read' && !!op.readBack },
  { name: 'write', matches: (op) => op.kind === 'write' },
  { name: 'delete', matches: (op) => op.kind === 'delete' },
  { name: 'clear', matches: (op) => op.kind === 'clear' },
  { name: 'wrap', matches: (op) => op.kind === 'wrap' },
  {
    name: 'wrap · cached',
    matches: (op) => op.kind === 'wrap' && op.tier !== 'loader' && op.tier !== undefined,
  },
  { name: 'wrap · ran loader', matches: (op) => op.kind === 'wrap' && op.tier === 'loader' },
  { name: 'all', matches: (op) => !held(op) },
];

export interface GroupSamples {
  group: string;
  /** Durations of the successful operations, in ms. */
  latencies: number[];
  errors: number;
}

/** Each group's latencies and errors, in table order; groups with no operations are left out. */
export function groupSamples(logs: ClientLog[]): GroupSamples[] {
  const samples: GroupSamples[] = [];
  for (const group of GROUPS) {
    const latencies: number[] = [];
    let errors = 0;
    for (const log of logs) {
      for (const op of log.ops) {
        if (!group.matches(op)) continue;
        if (op.error === undefined) latencies.push(op.end - op.start);
        else errors++;
      }
    }
    if (latencies.length > 0 || errors > 0) samples.push({ group: group.name, latencies, errors });
  }
  return samples;
}

/** Latency and throughput per operation and tier. */
export function operationRows(samples: GroupSamples[], durationMs: number): OperationRow[] {
  return samples.map(({ group, latencies, errors }) => ({
    group,
    errors,
    opsPerSec: (latencies.length * 1000) / durationMs,
    ...summarize(latencies),
  }));
}

export function hitRatios(logs: ClientLog[]): HitRatios {
  let reads = 0;
  let l1 = 0;
  let fromPostgres = 0;
  let postgresHits = 0;
  let found = 0;
  for (const log of logs) {
    for (const op of log.ops) {
      if (op.kind !== 'read' || op.readBack || op.error !== undefined) continue;
      reads++;
      if (op.seen) found++;
      if (op.tier === 'l1') l1++;
      if (op.tier === 'postgres') {
        fromPostgres++;
        if (op.seen) postgresHits++;
      }
    }
  }
  const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : Number.NaN);
  return { l1: ratio(l1, reads), postgres: ratio(postgresHits, fromPostgres), overall: ratio(found, reads) };
}

/** How many operations failed, by error code. */
export function errorsByCode(logs: ClientLog[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const log of logs) {
    for (const op of log.ops) if (op.error !== undefined) counts[op.error] = (counts[op.error] ?? 0) + 1;
  }
  return counts;
}
