/**
 * A first-come, first-served limit on how many tasks of this process hold something at once. The limit is
 * read at each acquire and release, so it follows what it stands for (a pool's size) when that changes.
 */
export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly limit: () => number) {}

  /** The function that gives a permit back if one is free now and nobody waits for one, else undefined. */
  private takeFree(): (() => void) | undefined {
    this.drain();
    if (this.queue.length > 0 || this.active >= this.limit()) return undefined;
    this.active++;
    return this.releaser();
  }

  /**
   * Resolves with the function that gives the permit back (calling it twice gives back one permit), or with
   * undefined when `signal` aborts first (the task then leaves the queue holding nothing).
   */
  async acquire(signal?: AbortSignal): Promise<(() => void) | undefined> {
    const now = this.takeFree();
    if (now) return now;
    if (signal?.aborted) return undefined;
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
    return granted ? this.releaser() : undefined;
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.drain();
    };
  }

  /** Hands free permits to the tasks waiting longest (more than one when the limit has grown). */
  private drain(): void {
    while (this.queue.length > 0 && this.active < this.limit()) {
      this.active++;
      this.queue.shift()?.();
    }
  }
}
