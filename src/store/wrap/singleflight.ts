/**
 * One task per key at a time within this process: callers that ask for a key while its task runs share
 * the task's promise, and the key is forgotten as soon as the task settles, whether it fulfils or rejects.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  /** Whether a task for the key runs now (a `run()` would join it). */
  has(key: string): boolean {
    return this.inFlight.has(key);
  }

  run(key: string, task: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running !== undefined) return running;
    const promise = Promise.resolve()
      .then(task)
      .finally(() => {
        if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
      });
    // Every caller may have given up (AbortSignal) by the time the task fails: that is not an unhandled rejection.
    promise.catch(() => undefined);
    this.inFlight.set(key, promise);
    return promise;
  }
}
