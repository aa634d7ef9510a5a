import { keyDigestHex } from '../adapter/validation.js';

/** One write waiting for its own change event: what it has heard of its key since it began. */
interface Waiter {
  key: string;
  heardUpTo: number;
  lost: boolean;
  /** Set once the write has answered with its version. */
  settle?: (heard: boolean) => void;
  target?: number;
}

export interface WriteEcho {
  /**
   * Resolves with true once an event of the key at `version` or later has been heard, false if events may
   * have been lost meanwhile (a flush, the listener lost, a clear) or none came within `timeoutMs`.
   */
  heard(version: number, timeoutMs: number): Promise<boolean>;
  /** The write failed: nothing to wait for. */
  cancel(): void;
}

/**
 * Lets a write know when this process has heard its own change event. Events reach a listener in commit
 * order, so by then every change committed before the write has been heard too: a delete another process
 * committed just before the write cannot still be on its way when the writer asks whether its result went
 * stale. Fed with the change events of one namespace, by row key.
 */
export class WriteEchoes {
  private readonly waiting = new Map<string, Set<Waiter>>();

  /** Before the write is sent: its event may come before its answer. */
  expect(key: string): WriteEcho {
    const waiter: Waiter = { key, heardUpTo: 0, lost: false };
    const waiters = this.waiting.get(key) ?? new Set();
    this.waiting.set(key, waiters);
    waiters.add(waiter);
    const forget = () => {
      waiters.delete(waiter);
      if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key);
    };
    return {
      heard: (version, timeoutMs) => {
        if (waiter.lost || waiter.heardUpTo >= version) {
          forget();
          return Promise.resolve(!waiter.lost);
        }
        return new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => waiter.settle?.(false), timeoutMs);
          timer.unref();
          waiter.target = version;
          waiter.settle = (heard) => {
            clearTimeout(timer);
            forget();
            resolve(heard);
          };
        });
      },
      cancel: forget,
    };
  }

  /** A set or delete of the namespace, named by its row key or, for a long key, by the key's digest. */
  changed(key: string | undefined, keyDigest: string | undefined, version: number): void {
    if (key !== undefined) {
      for (const waiter of [...(this.waiting.get(key) ?? [])]) this.note(waiter, version);
      return;
    }
    for (const [waiterKey, waiters] of [...this.waiting]) {
      if (keyDigestHex(waiterKey) !== keyDigest) continue;
      for (const waiter of [...waiters]) this.note(waiter, version);
    }
  }

  /** Events may have gone unheard: no write waiting now can know what came before it. */
  lost(): void {
    for (const waiters of [...this.waiting.values()]) {
      for (const waiter of [...waiters]) {
        waiter.lost = true;
        waiter.settle?.(false);
      }
    }
  }

  private note(waiter: Waiter, version: number): void {
    waiter.heardUpTo = Math.max(waiter.heardUpTo, version);
    if (waiter.target !== undefined && waiter.heardUpTo >= waiter.target) waiter.settle?.(true);
  }
}
