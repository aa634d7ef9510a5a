import { describe, expect, it } from 'vitest';
import { checkListenerFaults } from '../../harness/load/assertions/fault-windows.js';
import type { ClientLog } from '../../harness/load/collector.js';
import type { FaultEvent } from '../../harness/load/faults.js';
import type { OpRecord } from '../../harness/load/protocol.js';
import { check, log, read, remove, set } from './records.js';

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

describe('the harness listener-fault check', () => {
  const kill = (at: number): FaultEvent => ({
    kind: 'kill-listeners',
    at,
    done: at + 2,
    detail: '1 listener connections terminated',
  });
  const withListener = (ops: OpRecord[], events: ClientLog['listener']): ClientLog => ({
    ...log(0, ops),
    listener: events,
  });
  const l1Read = (start: number): OpRecord => ({ ...read(start, start + 1, [0, 1]), tier: 'l1' });

  it('pass a client that said disconnected after the fault and read L1 only once connected again', () => {
    const logs = [
      withListener(
        [l1Read(50), read(110, 112, [0, 1]), l1Read(130)],
        [
          { event: 'disconnected', at: 101 },
          { event: 'connected', at: 120 },
        ],
      ),
    ];
    expect(checkListenerFaults([kill(100)], logs).count).toBe(0);
  });

  it('flag a client that never said disconnected after the fault, and an L1 read while its listener was down', () => {
    const deaf = withListener([l1Read(50)], []);
    expect(checkListenerFaults([kill(100)], [deaf]).examples).toEqual([
      'client 0 never said disconnected after the kill-listeners fault (1 listener connections terminated)',
    ]);
    const servedWhileDown = withListener(
      [l1Read(110)],
      [
        { event: 'disconnected', at: 101 },
        { event: 'connected', at: 120 },
      ],
    );
    expect(checkListenerFaults([kill(100)], [servedWhileDown]).examples).toEqual([
      'client 0 read k1 from L1 while its listener was down',
    ]);
  });

  it('ignore a fault that terminated no listener, and a client already down when it hit', () => {
    const none = { ...kill(100), detail: '0 listener connections terminated' };
    expect(checkListenerFaults([none], [withListener([], [])]).count).toBe(0);
    const alreadyDown = withListener([], [{ event: 'disconnected', at: 90 }]);
    expect(checkListenerFaults([kill(100)], [alreadyDown]).count).toBe(0);
  });
});
