/** A first-come, first-served limit on how many tasks of this process hold something at once. */
export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** The function that gives a permit back if one is free now, else undefined: never waits. */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.limit) return undefined;
    this.active++;
    return this.releaser();
  }

  /**
   * Resolves with the function that gives the permit back (calling it twice gives back one permit), or with
   * undefined when `signal` aborts first (the task then leaves the queue holding nothing).
   */
  async acquire(signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (this.active < this.limit) {
      this.active++;
    } else {
      if (signal?.aborted) return undefined;
      // The permit passes straight from the releasing task to this one, so `active` stays as it is.
      const granted = await new Promise<boolean>((resolve) => {
        const take = () => {
          signal?.removeEventListener('abort', giveUp);
          resolve(true);
        };
        const giveUp = () => {
          const index = this.queue.indexOf(take);
          if (index >= 0) this.queue.splice(index, 1);
          resolve(false);
        };
        this.queue.push(take);
        signal?.addEventListener('abort', giveUp, { once: true });
      });
      if (!granted) return undefined;
    }
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    };
  }
}
