import { describe, expect, it } from 'vitest';
import { buildHistory } from '../../harness/load/assertions/history.js';
import { separatedByClears } from '../../harness/load/assertions/stampede.js';
import type { OpRecord } from '../../harness/load/protocol.js';
import { CLEAR_KEY, nextOp } from '../../harness/load/workload.js';
import { check, clear, log, read, set } from './records.js';

describe('the harness history with clears', () => {
  it('ranks a clear by its marker version, between the sets it hides and those it does not, in every key', () => {
    const history = buildHistory([
      log(0, [set(1, 10, 0, 5), set(2, 13, 20, 25), set(3, 11, 0, 6, 'k2')]),
      log(1, [clear(12, 10, 15)]),
    ]);
    const k1 = history.keys.get('k1')?.changes.map((change) => [change.kind, change.rank, change.writer]);
    expect(k1).toEqual([
      ['set', 20, 0],
      ['clear', 24, 1],
      ['set', 26, 0],
    ]);
    expect(history.keys.get('k2')?.changes.map((change) => change.kind)).toEqual(['set', 'clear']);
    // The clear names no key of its own.
    expect(history.keys.has(CLEAR_KEY)).toBe(false);
  });

  it('keeps a failed clear as a removal that may have happened, in every key', () => {
    const failed: OpRecord = { kind: 'clear', key: CLEAR_KEY, start: 30, end: 40, error: 'ECONNRESET' };
    const history = buildHistory([log(0, [set(1, 10, 0, 5), set(2, 11, 0, 5, 'k2')]), log(1, [failed])]);
    expect(history.keys.get('k1')?.uncertainRemovals).toEqual([{ start: 30, end: 40 }]);
    expect(history.keys.get('k2')?.uncertainRemovals).toEqual([{ start: 30, end: 40 }]);
  });
});

describe('the harness read checks with clears', () => {
  it('accept a miss after a clear acknowledged before the read', () => {
    const checks = check([log(0, [set(1, 10, 0, 5), read(2005, 2006)]), log(1, [clear(12, 100, 110)])]);
    expect(checks.checked).toBe(1);
    expect(checks.readYourWrites.count).toBe(0);
    expect(checks.beyondBound.count).toBe(0);
  });

  it('accept a miss while a clear is in flight (started before the read ended), not after it', () => {
    const during = check([log(0, [set(1, 10, 0, 5), read(2005, 2010)]), log(1, [clear(12, 2008, 2020)])]);
    expect(during.readYourWrites.count).toBe(0);
    const after = check([log(0, [set(1, 10, 0, 5), read(2005, 2010)]), log(1, [clear(12, 2011, 2020)])]);
    expect(after.readYourWrites.count).toBe(1);
  });

  it('accept a miss of a write that committed after the clear but drew its version before it (hidden)', () => {
    const checks = check([log(0, [set(1, 11, 0, 300), read(2005, 2006)]), log(1, [clear(12, 100, 110)])]);
    expect(checks.readYourWrites.count).toBe(0);
    expect(checks.beyondBound.count).toBe(0);
  });

  it('flag a value a clear hid, long after the clear was acknowledged, as stale', () => {
    const checks = check([log(0, [set(1, 10, 0, 5)]), log(1, [clear(12, 5, 10), read(2010, 2011, [0, 1])])]);
    expect(checks.staleness).toEqual([2000]);
    expect(checks.beyondBound.examples).toEqual(['client 1 read k1 the value of client 0, 2000.0 ms stale']);
    // The reader cleared: its own acknowledged clear hid the value.
    expect(checks.readYourWrites.count).toBe(1);
  });

  it('do not flag a value written after the clear', () => {
    const checks = check([
      log(0, [set(1, 10, 0, 5), set(2, 13, 20, 25)]),
      log(1, [clear(12, 5, 10), read(2010, 2011, [0, 2])]),
    ]);
    expect(checks.staleness).toEqual([]);
    expect(checks.readYourWrites.count).toBe(0);
  });
});

describe('the harness workload and stampede check with clears', () => {
  it('draws a clear with its share of the mix, and never without one', () => {
    const settings = {
      mix: { read: 0.5, write: 0.25, delete: 0.15, clear: 0.1 },
      wrapShare: 0,
      holdShare: 0,
      keys: 10,
      valueSize: 16,
      ttlMs: undefined,
      concurrency: 1,
    };
    const draws = (values: number[]) => {
      let next = 0;
      return () => values[next++] ?? 0;
    };
    expect(nextOp(settings, 0, draws([0.5, 0, 0.95]))).toEqual({ kind: 'clear', key: CLEAR_KEY });
    expect(nextOp(settings, 0, draws([0.5, 0, 0.85]))).toEqual({ kind: 'delete', key: 'k0' });
    const noClears = { ...settings, mix: { read: 0.5, write: 0.25, delete: 0.25, clear: 0 } };
    expect(nextOp(noClears, 0, draws([0.5, 0, 0.999_999]))).toEqual({ kind: 'delete', key: 'k0' });
  });

  // A loader run starting at `loader`, its call returning 50 ms later, its stamp having seen marker `cleared`.
  const run = (
    loader: number,
    cleared: number | undefined,
    ownClears: Array<{ start: number; end: number }> = [],
  ) => ({
    loader,
    end: loader + 50,
    cleared,
    ownClears,
  });

  it("allows a cold key to be loaded again when a clear committed between the runs' stamps", () => {
    expect(separatedByClears([run(2, 0), run(120, 7)])).toBe(true);
    // Runs that saw the same marker had no clear between them, however close a clear ran in time (two loads at
    // once, or one after a killed holder whose queue a clear had passed before either stamp).
    expect(separatedByClears([run(2, 7), run(3, 7)])).toBe(false);
    expect(separatedByClears([run(310, 7), run(360, 7)])).toBe(false);
    // A third run needs a clear of its own; a run whose stamp was not noted explains nothing.
    expect(separatedByClears([run(2, 0), run(120, 7), run(126, 7)])).toBe(false);
    expect(separatedByClears([run(2, 0), run(120, 7), run(126, 9)])).toBe(true);
    expect(separatedByClears([run(2, undefined), run(120, 7)])).toBe(false);
  });

  it("also allows it when the first run's own process had a clear in flight during that run (it stored nothing)", () => {
    // The clear was sent while the loader ran and committed only after the next run's stamp: same marker.
    expect(separatedByClears([run(300, 7, [{ start: 320, end: 400 }]), run(360, 7)])).toBe(true);
    // A clear of that process before the run, or after its call returned, explains nothing.
    expect(separatedByClears([run(300, 7, [{ start: 200, end: 250 }]), run(360, 7)])).toBe(false);
    expect(separatedByClears([run(300, 7, [{ start: 351, end: 400 }]), run(360, 7)])).toBe(false);
    // Nor does one of the second run's process.
    expect(separatedByClears([run(300, 7), run(360, 7, [{ start: 320, end: 400 }])])).toBe(false);
  });

  it('cannot explain a miss by a clear that failed before the missed set began', () => {
    const failed: OpRecord = { kind: 'clear', key: CLEAR_KEY, start: 30, end: 40, error: 'ECONNREFUSED' };
    const late = check([log(0, [set(1, 10, 2000, 2005), read(4005, 4006)]), log(1, [failed])]);
    expect(late.readYourWrites.count).toBe(1);
    expect(late.beyondBound.count).toBe(1);
    // A set that began while the clear was in flight may have been removed by it.
    const during = check([log(0, [set(1, 10, 35, 45), read(2045, 2046)]), log(1, [failed])]);
    expect(during.readYourWrites.count).toBe(0);
  });
});
