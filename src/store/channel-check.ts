import type { TriggerState } from '../adapter/postgres-adapter.js';
import { type BackoffOptions, backoffDelay } from '../notify/backoff.js';

export interface ChannelCheckOptions {
  /** The channel this cache listens on. */
  expected: string;
  /** Where the cache table's trigger sends its events now, and the stamp of its triggers. */
  read: () => Promise<TriggerState>;
  /** The answer of the latest check: whether the trigger notifies the expected channel, and what was read. */
  onAnswer: (matches: boolean, state: TriggerState) => void;
  /** A check that failed; it is retried with backoff until one answers or the check is cancelled. */
  onError: (error: unknown) => void;
  retry?: BackoffOptions;
}

/**
 * Whether the trigger sends its events to the channel this cache listens on. A process started with another
 * `notifyChannel` re-points it, and then no change reaches this one: L1 may be trusted only once a check
 * says yes. Only the latest check counts, so an answer read before a re-point never settles anything after it.
 * One query at a time: a check asked for while one is in flight runs once that one is back (anyone may send
 * the notices that ask for checks, so a flood of them must not become a flood of queries).
 */
export class ChannelCheck {
  private generation = 0;
  private inFlight = false;
  private rerun: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ChannelCheckOptions) {}

  /** Checks now, or as soon as the check in flight is back; either way, answers before this call no longer count. */
  start(attempt = 0): void {
    this.cancel();
    if (this.inFlight) {
      this.rerun = attempt;
      return;
    }
    const generation = this.generation;
    const current = () => generation === this.generation;
    this.inFlight = true;
    this.options.read().then(
      (state) => {
        if (this.settled() && current())
          this.options.onAnswer(state.channel === this.options.expected, state);
      },
      (error: unknown) => {
        if (!this.settled() || !current()) return;
        this.options.onError(error);
        this.retryTimer = setTimeout(
          () => {
            if (current()) this.start(attempt + 1);
          },
          backoffDelay(attempt, this.options.retry),
        );
        this.retryTimer.unref();
      },
    );
  }

  /** Drops the check in flight (its answer will be ignored), any retry, and any check waiting to run. */
  cancel(): void {
    this.generation++;
    this.rerun = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The query is back: runs the check asked for meanwhile, if any. False when that one supersedes this answer. */
  private settled(): boolean {
    this.inFlight = false;
    const rerun = this.rerun;
    if (rerun === undefined) return true;
    this.rerun = undefined;
    this.start(rerun);
    return false;
  }
}
