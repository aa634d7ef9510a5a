import { ConnectionError } from '../errors.js';
import { Claims } from './claims.js';
import { type Claim, claimIds, QueueClaims } from './queue-claims.js';

/**
 * Called when a waiting statement's time is up; a merged statement fails the calls whose own wait is over
 * and answers when the next of the others runs out, and what those still claim; or undefined when none is
 * left.
 */
export type Shed = (now: number) => { deadline: number; claims: Claim[] } | undefined;

interface SlotStatement {
  position: number;
  claims: Claim[];
  running: boolean;
}

interface Waiter {
  statement: SlotStatement;
  start: () => void;
  fail: (error: Error) => void;
  deadline: number;
  shed: Shed | undefined;
}

/**
 * Bounds the adapter's statements in flight to the pool's size, and keeps the calls on one key in the order
 * they were made. Work beyond that waits here, in order, rather than in the pool, so that waiting reads and
 * writes can be merged into one statement.
 *
 * Each statement claims what it reads or writes. One that conflicts with a statement running, or with one
 * waiting ahead of it, waits; others start as slots free, in order. A call merged into a statement queued
 * earlier never overtakes a later-queued one on the same key.
 */
export class ConnectionSlots {
  private busy = 0;
  private waiting: Waiter[] = [];
  private readonly whenIdle: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private startScheduled = false;
  /** Position of the newest statement; positions only grow. */
  private newest = 0;
  private newestQueued = 0;
  private readonly statements = new Map<number, SlotStatement>();
  private readonly running = new Claims();
  readonly claims = new QueueClaims();

  /** @param waitTimeout longest a statement waits for a slot, in ms, before failing with a ConnectionError. */
  constructor(
    readonly size: number,
    readonly waitTimeout: number,
  ) {}

  /** True when a statement submitted now would start at once, unless it conflicts with one running. */
  get free(): boolean {
    return this.busy < this.size && this.waiting.length === 0;
  }

  /** The queue position of the statement that waited last: a merged statement's, right after it queued. */
  get lastQueued(): number {
    return this.newestQueued;
  }

  /**
   * Runs the task once a slot is free and no statement before it conflicts with `claim`.
   * @param shed see `Shed`; without it the statement fails as a whole when its wait is over.
   */
  async run<T>(task: () => Promise<T>, claim?: Claim, shed?: Shed): Promise<T> {
    const statement: SlotStatement = {
      position: ++this.newest,
      claims: claim ? [claim] : [],
      running: false,
    };
    this.statements.set(statement.position, statement);
    if (this.free && !this.running.conflicts(statement.claims)) this.begin(statement);
    else {
      this.newestQueued = statement.position;
      if (claim) this.claims.add(statement.position, claimIds(claim));
      // A slot is free but others wait: this one may start past them. Looked at once the caller has added
      // what else the statement claims (calls merged into it), which it does as soon as run() returns.
      if (this.busy < this.size) this.startSoon();
      await this.wait(statement, shed);
    }
    try {
      return await task();
    } finally {
      this.finish(statement);
    }
  }

  /** Adds to what the statement waiting at `position` claims: a call merged into it (see `mayJoin`). */
  claim(position: number, claim: Claim): void {
    const statement = this.statements.get(position);
    if (!statement || statement.running) return;
    statement.claims.push(claim);
    this.claims.add(position, claimIds(claim));
  }

  /**
   * Whether a call holding `claim` may join the statement at `position`: only while it waits (once started it
   * may run beside a statement the call must follow), not past a later-queued conflict (see QueueClaims), and
   * not when the statement, or the call, waits for one running (an unrelated call would wait with them).
   */
  mayJoin(position: number, claim: Claim): boolean {
    const statement = this.statements.get(position);
    if (!statement || statement.running) return false;
    if (this.running.conflicts([claim]) || this.running.conflicts(statement.claims)) return false;
    return this.claims.mayJoin(position, claimIds(claim));
  }

  /** The error of a statement that waited `waitTimeout` in vain. */
  timeoutError(): ConnectionError {
    return new ConnectionError(
      `waited ${this.waitTimeout} ms in vain for a pool connection (all busy) or for an earlier call on the same key`,
    );
  }

  /** Resolves once no statement runs or waits for a slot. */
  idle(): Promise<void> {
    if (this.busy === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.whenIdle.push(resolve));
  }

  private wait(statement: SlotStatement, shed: Shed | undefined): Promise<void> {
    return new Promise<void>((start, fail) => {
      const deadline = Date.now() + this.waitTimeout;
      this.waiting.push({ statement, start, fail, deadline, shed });
      this.schedule(deadline);
    });
  }

  private begin(statement: SlotStatement): void {
    this.busy++;
    statement.running = true;
    this.running.add(statement.claims);
  }

  private finish(statement: SlotStatement): void {
    this.busy--;
    this.running.remove(statement.claims);
    this.statements.delete(statement.position);
    this.startWaiting();
    if (this.busy === 0 && this.waiting.length === 0)
      for (const resolve of this.whenIdle.splice(0)) resolve();
  }

  /**
   * Starts waiting statements while slots are free: in order, but past one that must wait (it conflicts with
   * a statement running) to those that conflict neither with a running one nor with any waiting ahead.
   */
  private startWaiting(): void {
    // The common case: the oldest may start.
    while (this.busy < this.size) {
      const next = this.waiting[0];
      if (!next || this.running.conflicts(next.statement.claims)) break;
      this.waiting.shift();
      this.startNow(next);
    }
    if (this.busy >= this.size || this.waiting.length < 2) return;
    const ahead = new Claims();
    for (let index = 0; index < this.waiting.length && this.busy < this.size; ) {
      const waiter = this.waiting[index] as Waiter;
      const { claims } = waiter.statement;
      if (this.running.conflicts(claims) || ahead.conflicts(claims)) {
        ahead.add(claims);
        index++;
        continue;
      }
      this.waiting.splice(index, 1);
      this.startNow(waiter);
    }
  }

  private startSoon(): void {
    if (this.startScheduled) return;
    this.startScheduled = true;
    queueMicrotask(() => {
      this.startScheduled = false;
      this.startWaiting();
    });
  }

  private startNow(waiter: Waiter): void {
    this.claims.release(waiter.statement.position);
    this.begin(waiter.statement);
    waiter.start();
  }

  private schedule(deadline: number): void {
    if (deadline >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(1, deadline - Date.now())).unref();
  }

  private expire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const still: Waiter[] = [];
    for (const waiter of this.waiting) {
      if (waiter.deadline > now) {
        still.push(waiter);
        continue;
      }
      const rest = waiter.shed?.(now);
      if (rest !== undefined && rest.deadline > now) {
        waiter.deadline = rest.deadline;
        // What the calls that gave up claimed no longer holds anything back.
        const { statement } = waiter;
        statement.claims = rest.claims;
        this.claims.replace(statement.position, rest.claims.flatMap(claimIds));
        still.push(waiter);
        continue;
      }
      this.claims.release(waiter.statement.position);
      this.statements.delete(waiter.statement.position);
      waiter.fail(this.timeoutError());
    }
    this.waiting = still;
    // A statement that gave up may have been what held the others back.
    this.startWaiting();
    for (const waiter of this.waiting) this.schedule(waiter.deadline);
    if (this.busy === 0 && this.waiting.length === 0)
      for (const resolve of this.whenIdle.splice(0)) resolve();
  }
}
