import { InvalidKeyError } from '../errors.js';
import { backoffDelay } from '../notify/backoff.js';

/** Why everything that depends on a table must go. */
export type FlushReason =
  /** A matching event for a rule that maps rows to nothing (whole-table dependency). */
  | 'table'
  | 'truncate'
  /** The event's keys were too big for a notification. */
  | 'overflow'
  /** The rule's `where`, `keys` or `tags` threw, returned something that is not a string, or named what the store refuses. */
  | 'unmapped'
  /** The listener came back after a loss: events in between are unknown. */
  | 'reconnected'
  /** A rule's table stopped sending events (its watch was uninstalled or disabled): since when is unknown. */
  | 'unwatched'
  /** Asked for explicitly. */
  | 'manual';

/** One eviction as carried out: keys and tags deleted, or everything flushed (then `keys` is empty). */
export interface Eviction {
  keys: string[];
  tags: string[];
  everything?: FlushReason | undefined;
}

export interface EvictionActions {
  deleteKeys(keys: string[]): Promise<void>;
  evictTags(tags: string[]): Promise<void>;
  flush(reason: FlushReason): Promise<void>;
}

/** Keys per statement: large enough for bulk updates, small enough for one round trip. */
const KEYS_PER_STATEMENT = 1000;

/**
 * Runs evictions one batch at a time. Orders that arrive while a batch runs, or in the same turn of
 * the event loop (a bulk UPDATE's notifications arrive together), are merged into one batch: one
 * statement per kind instead of one per event. A failed batch is merged back and retried with
 * backoff until it succeeds; meanwhile `failing` is true.
 */
export class Evictor {
  private keys = new Set<string>();
  private tags = new Set<string>();
  private everything: FlushReason | undefined;
  private running: Promise<void> | undefined;
  private attempt = 0;
  private wake: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly actions: EvictionActions,
    private readonly done: (eviction: Eviction) => void,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** True while a failed batch waits for its retry. */
  get failing(): boolean {
    return this.attempt > 0;
  }

  /** True when nothing is pending or running. */
  get idle(): boolean {
    return this.running === undefined && !this.hasPending();
  }

  order(order: {
    keys?: Iterable<string>;
    tags?: Iterable<string>;
    everything?: FlushReason | undefined;
  }): void {
    if (this.stopped) return;
    for (const key of order.keys ?? []) this.keys.add(key);
    for (const tag of order.tags ?? []) this.tags.add(tag);
    // A reconnect's flush keeps its reason when merged: its completion is what restores trust.
    if (order.everything && (this.everything === undefined || order.everything === 'reconnected')) {
      this.everything = order.everything;
    }
    if (!this.hasPending()) return;
    this.running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  /** Resolves once nothing is pending or running, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.idle && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
      });
      await Promise.race([this.running ?? Promise.resolve(), timedOut]);
      clearTimeout(timer);
    }
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private hasPending(): boolean {
    return this.everything !== undefined || this.keys.size > 0 || this.tags.size > 0;
  }

  private async drain(): Promise<void> {
    while (this.hasPending() && !this.stopped) {
      const batch: Eviction = { keys: [...this.keys], tags: [...this.tags], everything: this.everything };
      this.keys = new Set();
      this.tags = new Set();
      this.everything = undefined;
      try {
        await this.carryOut(batch);
        this.attempt = 0;
        safely(() => this.done(batch.everything ? { ...batch, keys: [] } : batch));
      } catch (error) {
        const attempt = this.attempt++;
        safely(() => this.failed(error));
        // Refused input fails every retry, and holds up every later eviction merged with it: flush instead.
        this.order(error instanceof InvalidKeyError ? { everything: 'unmapped' } : batch);
        await this.pause(backoffDelay(attempt));
      }
    }
    this.running = undefined;
  }

  private async carryOut(batch: Eviction): Promise<void> {
    // A flush drops everything the keys could name.
    if (batch.everything) await this.actions.flush(batch.everything);
    else {
      for (let start = 0; start < batch.keys.length; start += KEYS_PER_STATEMENT) {
        await this.actions.deleteKeys(batch.keys.slice(start, start + KEYS_PER_STATEMENT));
      }
    }
    if (batch.tags.length > 0) await this.actions.evictTags(batch.tags);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      timer.unref();
      this.wake = finish;
    });
  }
}

/** The owner's callbacks must not stop the loop: it alone carries out evictions. */
function safely(callback: () => void): void {
  try {
    callback();
  } catch {
    // The owner reports its own failures; a throw here has nowhere better to go.
  }
}
