import { ConnectionError } from '../errors.js';

interface Waiter {
  start: () => void;
  fail: (error: Error) => void;
  deadline: number;
}

/**
 * Bounds the adapter's statements in flight to the pool's size. Work beyond that waits here, in order,
 * rather than in the pool, so that waiting reads and writes can be merged into one statement.
 */
export class ConnectionSlots {
  private busy = 0;
  private readonly waiting: Waiter[] = [];
  private readonly whenIdle: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  /** @param waitTimeout longest a statement waits for a slot, in ms, before failing with a ConnectionError. */
  constructor(
    readonly size: number,
    private readonly waitTimeout: number,
  ) {}

  /** True when a statement submitted now would start at once. */
  get free(): boolean {
    return this.busy < this.size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.busy < this.size) this.busy++;
    else await this.wait();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private wait(): Promise<void> {
    return new Promise<void>((start, fail) => {
      this.waiting.push({ start, fail, deadline: Date.now() + this.waitTimeout });
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
      next.start();
      return;
    }
    this.busy--;
    if (this.busy === 0) for (const resolve of this.whenIdle.splice(0)) resolve();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.waiting.length > 0 && (this.waiting[0]?.deadline ?? 0) <= now) {
      this.waiting
        .shift()
        ?.fail(new ConnectionError(`no pool connection became free within ${this.waitTimeout} ms`));
    }
    const oldest = this.waiting[0];
    if (oldest) this.timer = setTimeout(() => this.expire(), Math.max(1, oldest.deadline - now)).unref();
  }
}
