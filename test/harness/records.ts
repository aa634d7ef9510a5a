import { FaultWindows } from '../../harness/load/assertions/fault-windows.js';
import { buildHistory } from '../../harness/load/assertions/history.js';
import { checkReads } from '../../harness/load/assertions/reads.js';
import type { ClientLog } from '../../harness/load/collector.js';
import type { OpRecord } from '../../harness/load/protocol.js';
import { CLEAR_KEY } from '../../harness/load/workload.js';

// Clients' records as the harness collects them, built by hand for the checks' unit tests (times in ms).

export const BOUND_MS = 1000;
const TTL_MS = 30_000;

export function log(index: number, ops: OpRecord[]): ClientLog {
  return {
    index,
    ops,
    changes: [],
    listener: [],
    loaders: [],
    progress: { ops: ops.length, errors: 0, coherent: true },
  };
}

export const set = (seq: number, version: number, start: number, end: number, key = 'k1'): OpRecord => ({
  kind: 'write',
  key,
  seq,
  start,
  end,
  effects: [{ op: 'set', version }],
});

export const remove = (version: number, start: number, end: number): OpRecord => ({
  kind: 'delete',
  key: 'k1',
  start,
  end,
  effects: [{ op: 'delete', version }],
});

export const clear = (version: number, start: number, end: number): OpRecord => ({
  kind: 'clear',
  key: CLEAR_KEY,
  start,
  end,
  effects: [{ op: 'clear', version }],
});

export const read = (start: number, end: number, seen?: [number, number]): OpRecord => ({
  kind: 'read',
  key: 'k1',
  start,
  end,
  ...(seen ? { seen } : {}),
});

/** The read checks over these logs, with no faults, the default bound and a 30 s TTL. */
export function check(logs: ClientLog[]) {
  return checkReads(logs, buildHistory(logs), new FaultWindows([], logs), BOUND_MS, TTL_MS);
}
