/** What harness/bench/wrap.ts and its stampede workers (harness/bench/wrap-worker.ts) say to each other. */

export type StampedeSubject = 'ours' | 'keyv-postgres' | 'keyv-redis';

export interface RoundCommand {
  cmd: 'round';
  key: string;
  callers: number;
  loaderMs: number;
}

export interface RoundResult {
  loads: number;
  fulfilled: number;
  errors: number;
  firstError?: string | undefined;
  /** Epoch ms (sub-millisecond) when the callers started and when the last one was answered. */
  startedAt: number;
  finishedAt: number;
}

export const STAMPEDE_SCHEMA = 'bench_wrap';
export const PEER_TABLE = 'bench_wrap_keyv';
export const PEER_NAMESPACE = 'bench-wrap';
