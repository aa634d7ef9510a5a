import { describe, expect, it, vi } from 'vitest';
import { Claims } from '../../src/adapter/claims.js';
import { Coalescer } from '../../src/adapter/coalescer.js';
import { type Claim, claimIds, QueueClaims } from '../../src/adapter/queue-claims.js';
import { ConnectionSlots } from '../../src/adapter/slots.js';
import { ConnectionError } from '../../src/errors.js';

/** A task's promise that settles when the test says so: a statement that holds its slot until then. */
function held() {
  let release: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { done, release };
}

// The merging itself, without a database: which inputs share a statement.
describe('Coalescer', () => {
  it('never merges past maxBatchSize: an input that would take a statement past it starts another', async () => {
    const slots = new ConnectionSlots(1, 5000);
    const statements: string[][] = [];
    const coalescer = new Coalescer<string, string>({
      slots,
      maxBatch: 100,
      maxBatchSize: 10,
      sizeOf: (input) => input.length,
      keyOf: (input) => input,
      writes: true,
      one: async (_namespace, input) => {
        statements.push([input]);
        return input.toUpperCase();
      },
      many: async (_namespace, inputs) => {
        statements.push(inputs);
        return inputs.map((input) => input.toUpperCase());
      },
    });
    const gate = held();
    const busy = slots.run(() => gate.done);
    const inputs = ['aaaa', 'bbbb', 'cccc', 'dddddddddddd', 'ee'];
    const results = Promise.all(inputs.map((input) => coalescer.submit('ns', input)));
    gate.release();
    await busy;
    expect(await results).toEqual(inputs.map((input) => input.toUpperCase()));
    expect(statements).toEqual([['aaaa', 'bbbb'], ['cccc'], ['dddddddddddd'], ['ee']]);
  });

  it('holds claims only for statements still waiting, also while the queue never empties', async () => {
    const slots = new ConnectionSlots(1, 5000);
    let mostClaims = 0;
    const reads = new Coalescer<string, string>({
      slots,
      maxBatch: 2,
      keyOf: (key) => key,
      writes: false,
      one: async (_namespace, key) => key,
      many: async (_namespace, keys) => {
        mostClaims = Math.max(mostClaims, slots.claims.size);
        return keys;
      },
    });
    const gate = held();
    const busy = slots.run(() => gate.done);
    // Six callers, two per statement: two statements always wait behind the one running.
    let next = 0;
    const caller = async () => {
      while (next < 3000) {
        const key = `k${next++}`;
        expect(await reads.submit('ns', key)).toBe(key);
      }
    };
    const callers = Array.from({ length: 6 }, caller);
    gate.release();
    await busy;
    await Promise.all(callers);
    expect(mostClaims).toBeGreaterThan(0);
    expect(mostClaims).toBeLessThan(10);
    expect(slots.claims.size).toBe(0);
  });
});

describe('QueueClaims', () => {
  const claim = (keys: string[], writes: boolean) => claimIds({ namespace: 'ns', keys, writes });

  it('keeps an older waiting claim when a newer one on the same key gives up first', () => {
    const claims = new QueueClaims();
    claims.add(1, claim(['other'], false));
    claims.add(2, claim(['k'], true));
    claims.add(3, claim(['k'], true));
    claims.release(3);
    expect(claims.mayJoin(1, claim(['k'], false))).toBe(false);
    claims.release(2);
    expect(claims.mayJoin(1, claim(['k'], false))).toBe(true);
  });

  it('lets nothing join past a later eviction across the table', () => {
    const claims = new QueueClaims();
    claims.add(2, claimIds({ writes: true }));
    expect(claims.mayJoin(1, claim(['k'], false))).toBe(false);
    expect(claims.mayJoin(3, claim(['k'], false))).toBe(true);
  });
});

describe('Claims (running statements)', () => {
  const key = (k: string, writes: boolean, namespace = 'ns'): Claim[] => [{ namespace, keys: [k], writes }];
  const all = (namespace: string | undefined, writes: boolean): Claim[] => [{ namespace, writes }];

  it('holds back what conflicts with a claim held, and only that; the relation goes both ways', () => {
    const cases: Array<[Claim[], Claim[], boolean]> = [
      [key('k', true), key('k', false), true],
      [key('k', true), key('k', true), true],
      [key('k', false), key('k', false), false],
      [key('k', true), key('j', true), false],
      [key('k', true), key('k', true, 'other'), false],
      [key('k', false), all('ns', true), true],
      [key('k', true), all('ns', false), true],
      [key('k', false), all('ns', false), false],
      [all('ns', true), all('ns', false), true],
      [all('ns', true), all('other', true), false],
      [key('k', false), all(undefined, true), true],
      [all('ns', false), all(undefined, true), true],
      [key('k', true), all(undefined, false), false],
    ];
    for (const [held, asked, expected] of cases) {
      for (const [first, second] of [
        [held, asked],
        [asked, held],
      ] as const) {
        const claims = new Claims();
        claims.add(first);
        expect(claims.conflicts(second), JSON.stringify([first, second])).toBe(expected);
        claims.remove(first);
        expect(claims.conflicts(second)).toBe(false);
      }
    }
  });

  it('counts claims held twice, and forgets each as it is removed', () => {
    const claims = new Claims();
    claims.add(key('k', true));
    claims.add(key('k', true));
    claims.remove(key('k', true));
    expect(claims.conflicts(key('k', false))).toBe(true);
    claims.remove(key('k', true));
    expect(claims.conflicts(key('k', false))).toBe(false);
    expect(claims.conflicts(all(undefined, true))).toBe(false);
  });
});

describe('ConnectionSlots', () => {
  it('lets calls join a statement only while it waits, not once it has started', async () => {
    const slots = new ConnectionSlots(1, 5000);
    const firstGate = held();
    const first = slots.run(() => firstGate.done);
    const secondGate = held();
    let secondStarted = false;
    const second = slots.run(
      () => {
        secondStarted = true;
        return secondGate.done;
      },
      { namespace: 'ns', keys: ['a'], writes: false },
    );
    const position = slots.lastQueued;
    const read = { namespace: 'ns', keys: ['b'], writes: false };
    expect(slots.mayJoin(position, read)).toBe(true);
    firstGate.release();
    await first;
    await vi.waitFor(() => expect(secondStarted).toBe(true));
    expect(slots.mayJoin(position, read)).toBe(false);
    secondGate.release();
    await second;
  });
});

describe('a merged statement whose calls give up waiting', () => {
  it('claims only what its remaining calls read, so it is no longer held back by the others', async () => {
    const slots = new ConnectionSlots(2, 200);
    const reads = new Coalescer<string, string>({
      slots,
      maxBatch: 100,
      keyOf: (key) => key,
      writes: false,
      one: async (_namespace, key) => key,
      many: async (_namespace, keys) => keys,
    });
    const first = held();
    const second = held();
    const write = held();
    const busy = [slots.run(() => first.done), slots.run(() => second.done)];
    // Queued in this order: a write of k, then one statement reading k and (joining it later) j.
    const writing = slots.run(() => write.done, { namespace: 'ns', keys: ['k'], writes: true });
    const readK = reads.submit('ns', 'k').catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const readJ = reads.submit('ns', 'j');
    // The write starts and blocks the read of k; a slot is free, but the merged read waits behind the write.
    first.release();
    second.release();
    await Promise.all(busy);
    // At 200 ms the read of k gives up; what is left reads only j and starts.
    expect(await readK).toBeInstanceOf(ConnectionError);
    expect(await readJ).toBe('j');
    write.release();
    await writing;
    await slots.idle();
  });
});
