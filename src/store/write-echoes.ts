import { keyDigestHex } from '../adapter/validation.js';

/** One write waiting for its own change event: the versions of its key's sets heard since it began. */
interface Waiter {
  key: string;
  heard: Set<number>;
  lost: boolean;
  /** Set once the write has answered with its version. */
  target?: number;
  settle?: (heard: boolean) => void;
}

interface WriteEcho {
  /**
   * Resolves with true once the key's set event of exactly `version` has been heard, false if events may have
   * been lost meanwhile (a flush, the listener lost, a clear) or it did not come within `timeoutMs`.
   */
  heard(version: number, timeoutMs: number): Promise<boolean>;
  /** The write failed: nothing to wait for. */
  cancel(): void;
}

/**
 * Lets a write know when this process has heard its own change event. Events reach a listener in commit
 * order, so by then every change committed before the write has been heard too: a delete another process
 * committed just before the write cannot still be on its way when the writer asks whether its result went
 * stale. Only the write's own event will do: versions follow commit order per key except where a write
 * drew its version before another one's row came and went (an insert that met no row), so a later version
 * heard says nothing about this one. Fed with the set events of one namespace, by row key.
 */
export class WriteEchoes {
  private readonly waiting = new Map<string, Set<Waiter>>();

  /** Before the write is sent: its event may come before its answer. */
  expect(key: string): WriteEcho {
    const waiter: Waiter = { key, heard: new Set(), lost: false };
    const waiters = this.waiting.get(key) ?? new Set();
    this.waiting.set(key, waiters);
    waiters.add(waiter);
    const forget = () => {
      waiters.delete(waiter);
      if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key);
    };
    return {
      heard: (version, timeoutMs) => {
        if (waiter.lost || waiter.heard.has(version)) {
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

  /** A set of the namespace, named by its row key or, for a long key, by the key's digest. */
  set(key: string | undefined, keyDigest: string | undefined, version: number): void {
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
    if (waiter.target === version) waiter.settle?.(true);
    else waiter.heard.add(version);
  }
}
