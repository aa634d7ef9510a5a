import { describe, expect, it } from 'vitest';
import { ClearsSeen } from '../../src/store/clears-seen.js';
import { WritesInFlight } from '../../src/store/writes-in-flight.js';

describe('WritesInFlight', () => {
  it('reports an error of bringing L1 up to date, and answers the write that was made', async () => {
    const errors: unknown[] = [];
    const writing = new WritesInFlight((error) => errors.push(error));
    const answer = await writing.around(
      { ids: ['ns\u0000k'] },
      async () => 7,
      () => {
        throw new Error('L1 refused it');
      },
    );
    expect(answer).toBe(7);
    expect(errors).toHaveLength(1);
    expect(writing.covers('ns', 'ns\u0000k')).toBe(false);
  });

  it('marks what a write touches while it runs: its entries, its namespace, or everything; nothing for no keys', async () => {
    const writing = new WritesInFlight(() => undefined);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen: boolean[] = [];
    const check = () =>
      seen.push(
        writing.covers('ns', 'ns\u0000k'),
        writing.covers('ns', 'ns\u0000j'),
        writing.covers('other', 'other\u0000k'),
      );
    for (const marks of [
      { ids: ['ns\u0000k'] },
      { namespace: 'ns' },
      { everything: true } as const,
      { ids: [] },
    ]) {
      const running = writing.around(
        marks,
        () => held,
        () => undefined,
      );
      check();
      release();
      await running;
    }
    check();
    expect(seen).toEqual([
      ...[true, false, false],
      ...[true, true, false],
      ...[true, true, true],
      ...[false, false, false],
      ...[false, false, false],
    ]);
  });
});

describe('ClearsSeen', () => {
  it("tells which of a clear's event and its answer comes first", () => {
    const clears = new ClearsSeen();
    expect(clears.answer('ns', 5, true)).toBe(true);
    expect(clears.notify('ns', 5)).toBe(false);
    expect(clears.notify('ns', 6)).toBe(true);
    expect(clears.answer('ns', 6, true)).toBe(false);
    // Another clear of the namespace, whatever its version, is one of its own.
    expect(clears.notify('ns', 2)).toBe(true);
  });

  it('holds nothing for an event that cannot come: without a listener, or too long a namespace', () => {
    const clears = new ClearsSeen();
    expect(clears.answer('ns', 5, false)).toBe(true);
    expect(clears.notify('ns', 5)).toBe(true);
    const long = 'n'.repeat(5000);
    expect(clears.answer(long, 6, true)).toBe(true);
    expect(clears.notify(long, 6)).toBe(true);
  });
});
