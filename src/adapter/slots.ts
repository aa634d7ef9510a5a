import { ConnectionError } from '../errors.js';
import { type Claim, QueueClaims } from './queue-claims.js';

interface Waiter {
  position: number;
  start: () => void;
  fail: (error: Error) => void;
  deadline: number;
}

/**
 * Bounds the adapter's statements in flight to the pool's size. Work beyond that waits here, in order,
 * rather than in the pool, so that waiting reads and writes can be merged into one statement. What each
 * waiting statement claims is remembered, so that a call merged into a statement queued earlier never
 * overtakes a later-queued one on the same key (a set issued after a delete must land after it).
 */
export class ConnectionSlots {
  private busy = 0;
  private readonly waiting: Waiter[] = [];
  private readonly whenIdle: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  /** Queue position of the newest statement that waited; positions only grow. */
  private newest = 0;
  readonly claims = new QueueClaims();

  /** @param waitTimeout longest a statement waits for a slot, in ms, before failing with a ConnectionError. */
  constructor(
    readonly size: number,
    private readonly waitTimeout: number,
  ) {}

  /** True when a statement submitted now would start at once. */
  get free(): boolean {
    return this.busy < this.size;
  }

  /** The queue position of the statement that waited last: a merged statement's, right after it queued. */
  get lastQueued(): number {
    return this.newest;
  }

  async run<T>(task: () => Promise<T>, claim?: Claim): Promise<T> {
    if (this.busy < this.size) this.busy++;
    else {
      const position = ++this.newest;
      if (claim) this.claims.add(position, claim);
      await this.wait(position);
    }
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private wait(position: number): Promise<void> {
    return new Promise<void>((start, fail) => {
      this.waiting.push({ position, start, fail, deadline: Date.now() + this.waitTimeout });
      this.timer ??= setTimeout(() => this.expire(), this.waitTimeout).unref();
    });
  }

  /** Resolves once no statement runs or waits for a slot. */
  idle(): Promise<void> {
    if (this.busy === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.whenIdle.push(resolve));
  }

  /** A finished statement hands its slot straight to the oldest waiter, so nothing overtakes the queue. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) {
      this.claims.release(next.position);
      next.start();
      return;
    }
    this.busy--;
    if (this.busy === 0) for (const resolve of this.whenIdle.splice(0)) resolve();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (
      let oldest = this.waiting[0];
      oldest !== undefined && oldest.deadline <= now;
      oldest = this.waiting[0]
    ) {
      this.waiting.shift();
      this.claims.release(oldest.position);
      oldest.fail(new ConnectionError(`no pool connection became free within ${this.waitTimeout} ms`));
    }
    const oldest = this.waiting[0];
    if (oldest) this.timer = setTimeout(() => this.expire(), Math.max(1, oldest.deadline - now)).unref();
  }
}
