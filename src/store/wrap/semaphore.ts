/**
 * A first-come, first-served limit on how many tasks of this process hold something at once. The limit is
 * read at each acquire and release, so it follows what it stands for (a pool's size) when that changes.
 */
export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly limit: () => number) {}

  /**
   * Resolves with the function that gives the permit back (calling it twice gives back one permit), or with
   * undefined when `signal` aborts first (the task then leaves the queue holding nothing).
   */
  async acquire(signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (this.active < this.limit()) {
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
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.active <= this.limit() ? this.queue.shift() : undefined;
      if (next) next();
      else this.active--;
    };
  }
}
