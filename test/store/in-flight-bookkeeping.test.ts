import { describe, expect, it } from 'vitest';
import { ClearsSeen } from '../../src/store/clears-seen.js';
import { WriteEchoes } from '../../src/store/write-echoes.js';
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
  it('unmarks what a failed write touched, without settling it, and rejects with its error', async () => {
    const writing = new WritesInFlight(() => undefined);
    let settled = 0;
    for (const marks of [{ ids: ['ns\u0000k'] }, { namespace: 'ns' }, { everything: true } as const]) {
      const failing = writing.around(
        marks,
        async () => {
          throw new Error('the write failed');
        },
        () => settled++,
      );
      await expect(failing).rejects.toThrow('the write failed');
    }
    expect(settled).toBe(0);
    expect([writing.covers('ns', 'ns\u0000k'), writing.covers('other', 'other\u0000k')]).toEqual([
      false,
      false,
    ]);
  });
});

describe('WriteEchoes', () => {
  it("hears a write's own event only: not another version of its key, nor its own after events were lost", async () => {
    const echoes = new WriteEchoes();
    const overtaken = echoes.expect('k');
    const waited = overtaken.heard(5, 200);
    echoes.set('k', undefined, 7);
    expect(await waited).toBe(false);

    const afterLoss = echoes.expect('k');
    echoes.lost();
    echoes.set('k', undefined, 9);
    expect(await afterLoss.heard(9, 200)).toBe(false);

    const early = echoes.expect('k');
    echoes.set('k', undefined, 11);
    expect(await early.heard(11, 200)).toBe(true);
    const late = echoes.expect('k');
    const lateHeard = late.heard(12, 5000);
    echoes.set('k', undefined, 12);
    expect(await lateHeard).toBe(true);
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
