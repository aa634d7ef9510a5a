/**
 * Callers waiting for the next change of an entry (the waiters of a cluster-wide fill), by entry id. Each
 * resolves with true when woken, or with false after its timeout or when its signal aborts. Holds no
 * connection while waiting.
 */
export class ChangeWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const waiters = this.waiting.get(id) ?? new Set();
      this.waiting.set(id, waiters);
      const done = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiting.get(id) === waiters) this.waiting.delete(id);
        resolve(changed);
      };
      const wake = () => done(true);
      const aborted = () => done(false);
      // Not unref'd: a wrap() waiting on another process's fill keeps the process alive until it returns.
      const timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', aborted, { once: true });
      waiters.add(wake);
    });
  }

  wake(id: string): void {
    for (const wake of [...(this.waiting.get(id) ?? [])]) wake();
  }

  wakeWhere(matches: (id: string) => boolean): void {
    for (const [id, waiters] of [...this.waiting]) {
      if (matches(id)) for (const wake of [...waiters]) wake();
    }
  }
}
