/**
 * Callers waiting for the next change of an entry (the waiters of a cluster-wide fill), by entry id. Each
 * resolves with true when woken, or with false after its timeout or when its signal aborts. Holds no
 * connection while waiting. `listen` hears every change until it is stopped.
 */
export class ChangeWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Hears every change of the entry until the returned function is called. */
  listen(id: string, listener: () => void): () => void {
    const listeners = this.waiting.get(id) ?? new Set();
    this.waiting.set(id, listeners);
    const wrapped = () => listener();
    listeners.add(wrapped);
    return () => {
      listeners.delete(wrapped);
      if (listeners.size === 0 && this.waiting.get(id) === listeners) this.waiting.delete(id);
    };
  }

  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        stop();
        resolve(changed);
      };
      const stop = this.listen(id, () => done(true));
      const aborted = () => done(false);
      // Not unref'd: a wrap() waiting on another process's fill keeps the process alive until it returns.
      const timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', aborted, { once: true });
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
