import type { MachineDescription } from '../../bench/lib/machine.js';
import type { StampedeFigures } from '../assertions/stampede.js';
import type { Histogram } from '../metrics/histogram.js';
import type { HitRatios, OperationRow } from '../metrics/operations.js';
import type { LatencyStats } from '../metrics/summary.js';
import type { Timeline } from '../metrics/timeline.js';
import type { FaultKind, HarnessOptions } from '../options.js';
import type { SubjectName } from '../protocol.js';

/** Everything a harness run reports: printed as a table, written as JSON, drawn as HTML. */
export interface HarnessReport {
  generatedAt: string;
  command: string;
  machine: MachineDescription;
  /** The 1-minute load average when the run started and when it ended: other work on the machine shows here. */
  loadAverage: { atStart: number; atEnd: number };
  database: { source: 'DATABASE_URL' | 'embedded'; serverVersion: string };
  settings: ReportSettings;
  /** True when no assertion failed. */
  passed: boolean;
  assertions: AssertionResult[];
  run: RunFigures;
  comparison: Comparison | undefined;
}

export type ReportSettings = Pick<
  HarnessOptions,
  | 'clients'
  | 'concurrency'
  | 'durationMs'
  | 'mix'
  | 'wrapShare'
  | 'holdShare'
  | 'keys'
  | 'valueSize'
  | 'ttlMs'
  | 'cache'
  | 'stalenessBoundMs'
  | 'faults'
  | 'faultIntervalMs'
>;

export interface AssertionResult {
  id: number;
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  summary: string;
  examples: string[];
}

export interface SubjectFigures {
  subject: SubjectName;
  /** Measured workload time in ms. */
  durationMs: number;
  operations: OperationRow[];
  errorsByCode: Record<string, number>;
}

export interface StalenessFigures extends LatencyStats {
  boundMs: number;
  /** Reads whose answer was placed in its key's history. */
  checkedReads: number;
  /** Reads of a value whose write failed (version unknown): not checked. */
  unverifiableReads: number;
}

export interface FaultFigures {
  counts: Record<string, number>;
  events: Array<{
    kind: FaultKind;
    atMs: number;
    tookMs: number;
    detail: string;
    error?: string | undefined;
  }>;
  /** From each injection to each client's listener being back, over all clients and faults. */
  recovery: LatencyStats;
}

export interface CacheTotals {
  l1Hits: number;
  l1Misses: number;
  eventsReceived: number;
  eventEvictions: number;
  flushEvictions: number;
  refusedFills: number;
  listenerReconnects: number;
}

export interface RunFigures extends SubjectFigures {
  hitRatios: HitRatios;
  /** Staleness of the reads that returned something already superseded (count = stale reads). */
  staleness: StalenessFigures;
  /** Delays of the change events that arrived after the writer's acknowledgement (count: how many). */
  propagation: LatencyStats & { events: number; beforeAck: number };
  convergence: { entries: number; clients: number; fenceAttempts: number };
  stampede: StampedeFigures | undefined;
  faults: FaultFigures;
  cache: CacheTotals;
  timeline: Timeline;
  /** Offsets of the faults from the start, for the timeline. */
  faultMarksMs: Array<{ atMs: number; kind: FaultKind }>;
  latencyHistograms: Histogram[];
  stalenessHistogram: Histogram;
  propagationHistogram: Histogram;
}

/** A subject's figures in the comparison: those of its median round (by all-operations throughput). */
export interface ComparedSubject extends SubjectFigures {
  rounds: number;
  /** Lowest and highest all-operations throughput over the rounds. */
  opsPerSecRange: [number, number];
}

export interface Comparison {
  /** The workload every subject ran (no faults, no wraps: the peers have no wrap()). */
  note: string;
  subjects: ComparedSubject[];
  /** postgres-cache's throughput (and p99 latency) over each peer's, per operation group. */
  ratios: Array<{ peer: SubjectName; group: string; throughput: number; p99: number }>;
  skipped: Array<{ subject: SubjectName; reason: string }>;
}
