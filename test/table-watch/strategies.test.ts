import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { greedy, InvalidOptionError, type TableEvent, timed, windowed } from '../../src/index.js';

// Pure timer logic: fake timers make the windows exact instead of racing a loaded machine.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const event = (id: number): TableEvent => ({
  schema: 'public',
  table: 'users',
  operation: 'update',
  old: { id },
  new: { id },
  overflow: false,
});

function record() {
  const evictions: Array<{ at: number; ids: unknown[] }> = [];
  const start = Date.now();
  return {
    evictions,
    evict: (events: TableEvent[]) =>
      evictions.push({ at: Date.now() - start, ids: events.map((e) => e.new?.id) }),
  };
}

describe('greedy', () => {
  it('evicts on every event at once, one by one; nothing after stop()', () => {
    const { evictions, evict } = record();
    const run = greedy().start(evict);
    run.push(event(1));
    run.push(event(2));
    expect(evictions).toEqual([
      { at: 0, ids: [1] },
      { at: 0, ids: [2] },
    ]);
    run.stop();
    run.push(event(3));
    expect(evictions).toHaveLength(2);
  });
});

describe('windowed', () => {
  it('evicts after maxEvents events, without waiting', () => {
    const { evictions, evict } = record();
    const run = windowed({ maxEvents: 3, maxWait: 100 }).start(evict);
    run.push(event(1));
    run.push(event(2));
    expect(evictions).toEqual([]);
    run.push(event(3));
    expect(evictions).toEqual([{ at: 0, ids: [1, 2, 3] }]);
    // The window closed: the timer it had started does not fire an empty eviction.
    vi.advanceTimersByTime(500);
    expect(evictions).toHaveLength(1);
  });

  it('evicts maxWait after the first event of the window, not the last', () => {
    const { evictions, evict } = record();
    const run = windowed({ maxEvents: 10, maxWait: 100 }).start(evict);
    run.push(event(1));
    vi.advanceTimersByTime(60);
    run.push(event(2));
    vi.advanceTimersByTime(39);
    expect(evictions).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(evictions).toEqual([{ at: 100, ids: [1, 2] }]);
    run.push(event(3));
    vi.advanceTimersByTime(100);
    expect(evictions).toEqual([
      { at: 100, ids: [1, 2] },
      { at: 200, ids: [3] },
    ]);
  });

  it('flush() hands over the window now; stop() drops it and no timer fires', () => {
    const { evictions, evict } = record();
    const run = windowed({ maxEvents: 10, maxWait: 100 }).start(evict);
    run.push(event(1));
    run.flush();
    expect(evictions).toEqual([{ at: 0, ids: [1] }]);
    run.push(event(2));
    run.stop();
    vi.advanceTimersByTime(1000);
    expect(evictions).toHaveLength(1);
  });
});

describe('timed', () => {
  it('evicts at once after a quiet interval, then at most once per interval', () => {
    const { evictions, evict } = record();
    const run = timed({ interval: 100 }).start(evict);
    run.push(event(1));
    expect(evictions).toEqual([{ at: 0, ids: [1] }]);
    vi.advanceTimersByTime(10);
    run.push(event(2));
    vi.advanceTimersByTime(10);
    run.push(event(3));
    vi.advanceTimersByTime(79);
    expect(evictions).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(evictions).toEqual([
      { at: 0, ids: [1] },
      { at: 100, ids: [2, 3] },
    ]);
    vi.advanceTimersByTime(150);
    run.push(event(4));
    expect(evictions.at(-1)).toEqual({ at: 250, ids: [4] });
    vi.advanceTimersByTime(10);
    run.push(event(5));
    vi.advanceTimersByTime(89);
    expect(evictions).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(evictions.at(-1)).toEqual({ at: 350, ids: [5] });
  });

  it('a wall clock set back makes no event wait longer than the interval', () => {
    const evicted: unknown[][] = [];
    const run = timed({ interval: 100 }).start((events) => evicted.push(events.map((e) => e.new?.id)));
    run.push(event(1));
    expect(evicted).toEqual([[1]]);
    // NTP steps the clock back an hour: by Date.now(), the last eviction is now an hour in the future.
    vi.setSystemTime(Date.now() - 3_600_000);
    run.push(event(2));
    vi.advanceTimersByTime(99);
    expect(evicted).toEqual([[1]]);
    vi.advanceTimersByTime(1);
    expect(evicted).toEqual([[1], [2]]);
  });
});

describe('every strategy', () => {
  it('hands what evict throws to onError; a timer never throws into the event loop', () => {
    for (const strategy of [greedy(), windowed({ maxEvents: 2, maxWait: 10 }), timed({ interval: 10 })]) {
      const errors: unknown[] = [];
      const run = strategy.start(
        () => {
          throw new Error('boom');
        },
        (error) => errors.push(error),
      );
      run.push(event(1));
      run.push(event(2));
      vi.advanceTimersByTime(50);
      expect(errors.length, strategy.kind).toBeGreaterThan(0);
    }
  });

  it('refuses options out of range', () => {
    expect(() => windowed({ maxEvents: 0 })).toThrow(InvalidOptionError);
    expect(() => windowed({ maxEvents: 1.5 })).toThrow(InvalidOptionError);
    expect(() => windowed({ maxWait: -1 })).toThrow(InvalidOptionError);
    expect(() => timed({ interval: 0 })).toThrow(InvalidOptionError);
    expect(() => timed({ interval: Number.NaN })).toThrow(InvalidOptionError);
  });
});
