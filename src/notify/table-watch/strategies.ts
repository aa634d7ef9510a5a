import { InvalidOptionError, textOf } from '../../errors.js';
import type { TableEvent } from './table-event.js';

/** Decides when the events a rule has gathered are acted upon. */
export interface InvalidationStrategy {
  readonly kind: 'greedy' | 'windowed' | 'timed';
  /**
   * One run per rule. `evict` receives the events gathered since its last call, oldest first; what it
   * throws goes to `onError`, so a timer never throws into the event loop.
   */
  start(evict: (events: TableEvent[]) => void, onError?: (error: unknown) => void): StrategyRun;
}

export interface StrategyRun {
  push(event: TableEvent): void;
  /** Hands over whatever is pending now. */
  flush(): void;
  /** Drops what is pending and stops the timers. */
  stop(): void;
}

/** Evicts on every matching event, at once. */
export function greedy(): InvalidationStrategy {
  return {
    kind: 'greedy',
    start(evict, onError) {
      let stopped = false;
      return {
        push: (event) => {
          if (!stopped) safely(() => evict([event]), onError);
        },
        flush: () => undefined,
        stop: () => {
          stopped = true;
        },
      };
    },
  };
}

export interface WindowedOptions {
  /** Evict once this many events are pending. Default 100. */
  maxEvents?: number;
  /** Evict this many ms after the first pending event at the latest. Default 1000. */
  maxWait?: number;
}

/**
 * Gathers events in a window that opens with the first event and closes after `maxEvents` events or
 * `maxWait` ms, whichever comes first; then evicts for all of them at once. Trades staleness (up to
 * `maxWait`) for fewer evictions under write bursts.
 */
export function windowed({ maxEvents = 100, maxWait = 1000 }: WindowedOptions = {}): InvalidationStrategy {
  positiveInteger(maxEvents, 'windowed maxEvents');
  positiveDuration(maxWait, 'windowed maxWait');
  return {
    kind: 'windowed',
    start(evict, onError) {
      const batch = new Batch(evict, onError);
      return {
        push: (event) => {
          if (batch.stopped) return;
          batch.add(event);
          if (batch.size >= maxEvents) batch.flush();
          else if (batch.size === 1) batch.flushIn(maxWait);
        },
        flush: () => batch.flush(),
        stop: () => batch.stop(),
      };
    },
  };
}

export interface TimedOptions {
  /** Shortest time between two evictions, in ms. */
  interval: number;
}

/**
 * Evicts at most once per `interval`: the first event after a quiet interval evicts at once; events
 * within `interval` of the last eviction are gathered and evicted together when it has passed. No
 * event waits longer than `interval`.
 */
export function timed({ interval }: TimedOptions): InvalidationStrategy {
  positiveDuration(interval, 'timed interval');
  return {
    kind: 'timed',
    start(evict, onError) {
      let lastEviction = Number.NEGATIVE_INFINITY;
      const batch = new Batch((events) => {
        lastEviction = Date.now();
        evict(events);
      }, onError);
      return {
        push: (event) => {
          if (batch.stopped) return;
          batch.add(event);
          if (batch.scheduled) return;
          // Clamped: a wall clock set back must not postpone evictions by more than one interval.
          const wait = Math.min(interval, lastEviction + interval - Date.now());
          if (wait <= 0) batch.flush();
          else batch.flushIn(wait);
        },
        flush: () => batch.flush(),
        stop: () => batch.stop(),
      };
    },
  };
}

/** Pending events and the one timer that will hand them over. */
class Batch {
  private events: TableEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  stopped = false;

  constructor(
    private readonly evict: (events: TableEvent[]) => void,
    private readonly onError: ((error: unknown) => void) | undefined,
  ) {}

  get size(): number {
    return this.events.length;
  }

  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  add(event: TableEvent): void {
    this.events.push(event);
  }

  flushIn(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), ms);
    this.timer.unref?.();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.events.length === 0 || this.stopped) return;
    const events = this.events;
    this.events = [];
    safely(() => this.evict(events), this.onError);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.events = [];
  }
}

function safely(work: () => void, onError: ((error: unknown) => void) | undefined): void {
  try {
    work();
  } catch (error) {
    onError?.(error);
  }
}

function positiveInteger(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidOptionError(`${name} must be a positive integer; got ${textOf(value)}`);
  }
}

function positiveDuration(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(`${name} must be a positive number of ms; got ${textOf(value)}`);
  }
}
