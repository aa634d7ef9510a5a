import { ConnectionError } from '../errors.js';

/** What a statement reads or writes: some keys of a namespace, or (without keys) all of it. */
export interface Claim {
  namespace: string;
  keys?: readonly string[];
  writes: boolean;
}

interface Waiter {
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
  /** Per `namespace\0key`: the newest waiting position that writes it, and that reads it. */
  private readonly keyWrites = new Map<string, number>();
  private readonly keyReads = new Map<string, number>();
  /** Per namespace: the newest waiting position that writes all of it (a clear). */
  private readonly namespaceWrites = new Map<string, number>();

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
      this.newest++;
      if (claim) this.claim(this.newest, claim);
      await this.wait();
    }
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

  /** Records what the statement waiting at `position` reads or writes (a merged one claims as inputs join). */
  claim(position: number, { namespace, keys, writes }: Claim): void {
    if (keys === undefined) {
      if (writes) this.namespaceWrites.set(namespace, position);
      return;
    }
    const byKey = writes ? this.keyWrites : this.keyReads;
    for (const key of keys) byKey.set(`${namespace}\u0000${key}`, position);
  }

  /**
   * Whether a call on `key` may join the statement waiting at `position`: not when a statement queued after
   * it writes the key or clears its namespace, nor, for a write, when one reads the key.
   */
  mayJoin(position: number, namespace: string, key: string, writes: boolean): boolean {
    const id = `${namespace}\u0000${key}`;
    if ((this.namespaceWrites.get(namespace) ?? 0) > position) return false;
    if ((this.keyWrites.get(id) ?? 0) > position) return false;
    return !writes || (this.keyReads.get(id) ?? 0) <= position;
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
      if (this.waiting.length === 0) this.forgetClaims();
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
    if (this.waiting.length === 0) this.forgetClaims();
    const oldest = this.waiting[0];
    if (oldest) this.timer = setTimeout(() => this.expire(), Math.max(1, oldest.deadline - now)).unref();
  }

  /** Nothing waits: no statement is left for a call to overtake. */
  private forgetClaims(): void {
    this.keyWrites.clear();
    this.keyReads.clear();
    this.namespaceWrites.clear();
  }
}
