/**
 * What the coordinator and its client processes say to each other over the IPC channel, and the records
 * a client keeps of its operations. Every time is `now()` (harness/load/clock.ts): one clock for all.
 */
import type { CacheStats } from '../../src/index.js';
import type { OperationMix } from './options.js';

export type SubjectName = 'postgres-cache' | '@keyv/postgres' | '@keyv/redis';

export interface WorkloadSettings {
  mix: OperationMix;
  wrapShare: number;
  keys: number;
  valueSize: number;
  ttlMs: number | undefined;
  concurrency: number;
  /**
   * Share of the reads a client runs beside its lanes and whose answer from PostgreSQL the version tap holds
   * until the key's next change event arrives in the process (at most HOLD_CAP_MS): the fill guard's race,
   * made to happen. Instrumented postgres-cache runs only.
   */
  holdShare: number;
}

/** How each client's PostgresCache is configured. */
export interface CacheSettings {
  l1Max: number;
  /** Longest an entry stays in L1 whatever the events say (l1.ttl); needed for an L1 without notifications. */
  l1TtlMs: number | undefined;
  notifications: boolean;
}

/** Handed to a client process in the HARNESS_WORKER environment variable. */
export interface WorkerConfig {
  /** The writer id embedded in every value this process writes. */
  index: number;
  subject: SubjectName;
  /** For the pool (and for peers, the only connection string). */
  url: string;
  /** For postgres-cache's LISTEN connection: its own application_name, so faults can find it. */
  listenerUrl: string;
  redisUrl: string;
  schema: string;
  /** Keyv namespace; the store sees keys as `namespace:key`. */
  namespace: string;
  cache: CacheSettings;
  workload: WorkloadSettings;
  /**
   * Record what the checks need beyond the operations themselves (versions, every change event). Off for
   * comparison runs, which check nothing, so that postgres-cache pays no more harness overhead than its peers.
   */
  instrumented: boolean;
}

/** A `clear` empties the whole namespace (its record's key is CLEAR_KEY). */
export type OpKind = 'read' | 'write' | 'delete' | 'wrap' | 'clear';

/**
 * Where a read was answered: L1, PostgreSQL, or (for a peer, which has no tiers) the store. A wrap
 * answered by running its own loader is `loader`.
 */
export type Tier = 'l1' | 'postgres' | 'store' | 'loader';

/** A change the database acknowledged inside an operation, with the version it reported. */
export interface Effect {
  op: 'set' | 'delete' | 'clear';
  /**
   * For a set, the version it got; for a delete, the version of the row it removed (none: nothing removed);
   * for a clear, the version of the namespace's clear marker (every row below it is hidden).
   */
  version: number | undefined;
}

export interface OpRecord {
  kind: OpKind;
  /** The workload's key, without Keyv's namespace prefix. */
  key: string;
  start: number;
  end: number;
  /** Reads and wraps that succeeded. */
  tier?: Tier;
  /** The value a read or wrap returned, as [writer, seq]; absent for a miss. */
  seen?: [number, number];
  /** The sequence number this operation's value carries (writes, and wraps whose loader ran here). */
  seq?: number;
  /** Changes observed through the version tap (postgres-cache only). */
  effects?: Effect[];
  /** The error's `code` (or name) when the operation failed. */
  error?: string;
  /**
   * A read whose PostgreSQL answer the version tap held back (waiting for the key's next change event): for
   * how long, in ms. Not latency: such reads are kept out of the latency rows and counted in a row of their own.
   */
  heldMs?: number;
  /**
   * A read made at once after the same lane's write or delete of the key (read-your-writes at its riskiest).
   * Nearly always an L1 hit: kept out of the "read" rows and the hit ratios, which stay those of random reads.
   */
  readBack?: true;
}

/** A change event for a set, as one client's listener delivered it. */
export interface ChangeRecord {
  version: number;
  at: number;
}

export interface ListenerRecord {
  event: 'connected' | 'disconnected';
  at: number;
}

/** A loader run inside `wrap()`, sent as it starts (so a run cut short still counts). */
export interface LoaderRecord {
  key: string;
  /** The sequence number of the value it will return. */
  seq: number;
  start: number;
  /** The clear marker's version the fill's stamp saw before the loader (0: none yet), when noted. */
  cleared?: number | undefined;
}

export interface Progress {
  ops: number;
  errors: number;
  coherent: boolean;
}

export interface L1Row {
  key: string;
  version: number;
  value: string;
}

export type WorkerMessage =
  | { type: 'ready' }
  | {
      type: 'batch';
      ops: OpRecord[];
      changes: ChangeRecord[];
      listener: ListenerRecord[];
      loaders: LoaderRecord[];
      progress: Progress;
    }
  | { type: 'finished' }
  | { type: 'fence-armed' }
  | { type: 'fenced'; arrived: boolean; coherent: boolean; l1: L1Row[]; stats: CacheStats | undefined }
  | { type: 'holding'; key: string }
  /** A wrap() the coordinator asked for (kill-lock-holder) has returned; its record was sent before this. */
  | { type: 'wrapped'; key: string }
  | { type: 'failed'; message: string };

export type CoordinatorMessage =
  | { type: 'start'; startAt: number; endAt: number }
  | { type: 'arm-fence'; key: string }
  | { type: 'hold'; key: string }
  | { type: 'wrap'; key: string }
  | { type: 'exit' };
