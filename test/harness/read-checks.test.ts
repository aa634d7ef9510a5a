import { describe, expect, it } from 'vitest';
import { FaultWindows } from '../../harness/load/assertions/fault-windows.js';
import { buildHistory } from '../../harness/load/assertions/history.js';
import { checkReads } from '../../harness/load/assertions/reads.js';
import type { ClientLog } from '../../harness/load/collector.js';
import type { OpRecord } from '../../harness/load/protocol.js';

const BOUND_MS = 1000;
const TTL_MS = 30_000;

function log(index: number, ops: OpRecord[]): ClientLog {
  return {
    index,
    ops,
    changes: [],
    listener: [],
    loaders: [],
    progress: { ops: ops.length, errors: 0, coherent: true },
  };
}

const set = (seq: number, version: number, start: number, end: number): OpRecord => ({
  kind: 'write',
  key: 'k1',
  seq,
  start,
  end,
  effects: [{ op: 'set', version }],
});
const remove = (version: number, start: number, end: number): OpRecord => ({
  kind: 'delete',
  key: 'k1',
  start,
  end,
  effects: [{ op: 'delete', version }],
});
const read = (start: number, end: number, seen?: [number, number]): OpRecord => ({
  kind: 'read',
  key: 'k1',
  start,
  end,
  ...(seen ? { seen } : {}),
});

function check(logs: ClientLog[]) {
  return checkReads(logs, buildHistory(logs), new FaultWindows([], logs), BOUND_MS, TTL_MS);
}

describe('the harness read checks', () => {
  it('pass a process that reads its own write back', () => {
    const checks = check([log(0, [set(1, 10, 0, 5), read(6, 7, [0, 1])])]);
    expect(checks.checked).toBe(1);
    expect(checks.readYourWrites.count).toBe(0);
    expect(checks.staleness).toEqual([]);
  });

  it("flag a miss after the process's own acknowledged write, with the key's history in the finding", () => {
    const checks = check([log(0, [set(1, 10, 0, 5), read(2005, 2006)])]);
    expect(checks.readYourWrites.count).toBe(1);
    expect(checks.readYourWrites.examples[0]).toContain('client 0 read k1 as missing');
    expect(checks.readYourWrites.examples[0]).toContain(
      'set by client 0, rank 20, started -2005.0 ms, acked -2000.0 ms',
    );
    expect(checks.beyondBound.count).toBe(1);
  });

  it('explain a miss by another process’s delete that started before the read ended', () => {
    const checks = check([log(0, [set(1, 10, 0, 5), read(2005, 2010)]), log(1, [remove(10, 2008, 2020)])]);
    expect(checks.readYourWrites.count).toBe(0);
    expect(checks.beyondBound.count).toBe(0);
  });

  it('do not explain a miss by a delete that started after the read ended', () => {
    const checks = check([log(0, [set(1, 10, 0, 5), read(2005, 2010)]), log(1, [remove(10, 2011, 2020)])]);
    expect(checks.readYourWrites.count).toBe(1);
  });

  it('flag a value older than the reader’s own acknowledged write', () => {
    const checks = check([log(0, [set(1, 10, 0, 5), set(2, 11, 6, 9), read(10, 11, [0, 1])])]);
    expect(checks.readYourWrites.count).toBe(1);
    expect(checks.staleness).toEqual([1]);
  });
});
