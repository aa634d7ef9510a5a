import { describe, expect, it } from 'vitest';
import { type Eviction, Evictor, type FlushReason } from '../../src/store/table-invalidation-evictor.js';
import { eventually } from '../support/database.js';

// The eviction loop on its own, with actions that record what they were asked (no database involved).
describe('Evictor', () => {
  it("keeps a reconnect's reason when its flush is merged with others: its completion is what restores trust", async () => {
    let release: () => void = () => undefined;
    const firstFlush = new Promise<void>((resolve) => {
      release = resolve;
    });
    const flushed: FlushReason[] = [];
    const done: Eviction[] = [];
    const evictor = new Evictor(
      {
        deleteKeys: async () => undefined,
        evictTags: async () => undefined,
        flush: async (reason) => {
          flushed.push(reason);
          if (flushed.length === 1) await firstFlush;
        },
      },
      (eviction) => done.push(eviction),
      () => undefined,
    );
    evictor.order({ everything: 'table' });
    expect(await eventually(() => flushed.length === 1)).toBe(true);
    // While the first flush runs, three more are asked for: they go as one, which is the reconnect's.
    evictor.order({ everything: 'overflow' });
    evictor.order({ everything: 'reconnected', keys: ['k'] });
    evictor.order({ everything: 'manual' });
    release();
    expect(await eventually(() => done.length === 2)).toBe(true);
    expect(flushed).toEqual(['table', 'reconnected']);
    expect(done.map((eviction) => eviction.everything)).toEqual(['table', 'reconnected']);
    evictor.stop();
  });
});
