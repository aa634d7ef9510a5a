import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/adapter/coalescer.js';
import { ConnectionSlots } from '../../src/adapter/slots.js';

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
    let release: () => void = () => undefined;
    const busy = slots.run(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    const inputs = ['aaaa', 'bbbb', 'cccc', 'dddddddddddd', 'ee'];
    const results = Promise.all(inputs.map((input) => coalescer.submit('ns', input)));
    release();
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
    let release: () => void = () => undefined;
    const busy = slots.run(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    // Six callers, two per statement: two statements always wait behind the one running.
    let next = 0;
    const caller = async () => {
      while (next < 3000) {
        const key = `k${next++}`;
        expect(await reads.submit('ns', key)).toBe(key);
      }
    };
    const callers = Array.from({ length: 6 }, caller);
    release();
    await busy;
    await Promise.all(callers);
    expect(mostClaims).toBeGreaterThan(0);
    expect(mostClaims).toBeLessThan(10);
    expect(slots.claims.size).toBe(0);
  });
});
