/**
 * Deletes expired rows in bounded batches on a timer. The timer is unref'd so it never keeps a
 * process alive; the cluster-wide "one at a time" lives in the SQL function it calls.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly sweepBatch: (batchSize: number) => Promise<number>,
    private readonly intervalMs: number,
    private readonly batchSize: number,
    private readonly onError: (error: unknown) => void,
    private readonly maxBatchesPerRun = 100,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.sweep().catch(this.onError);
    }, this.intervalMs);
    this.timer.unref();
  }

  /** A run now, in the background (after a clear), when the sweeper is on. */
  soon(): void {
    if (this.intervalMs > 0) this.sweep().catch(this.onError);
  }

  /** One run: batches until a batch comes back short, or another process holds the sweep lock. */
  sweep(): Promise<number> {
    this.running ??= this.sweepBatches().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer and waits for a run in progress, so the pool can be ended after it. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async sweepBatches(): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < this.maxBatchesPerRun; batch++) {
      const removed = await this.sweepBatch(this.batchSize);
      if (removed < 0) break;
      total += removed;
      if (removed < this.batchSize) break;
    }
    return total;
  }
}
