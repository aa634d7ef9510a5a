import type { ClientLog } from '../collector.js';
import type { FaultEvent } from '../faults.js';

interface Window {
  start: number;
  end: number;
}

/** Faults that cut the clients' LISTEN connections (killing a lock holder leaves them alone). */
const LISTENER_FAULTS = new Set(['kill-listeners', 'restart-postgres']);

/**
 * The time each client spent in a fault that cut its listener: from the injection until its listener
 * was connected again (or, if it never noticed, until the injection returned). Events may be lost inside
 * such a window, and the cache recovers by flushing L1 on reconnect; so staleness is measured from
 * the recovery, not from a write acknowledged before or during the fault.
 */
export class FaultWindows {
  private readonly windows = new Map<number, Window[]>();

  constructor(faults: FaultEvent[], logs: ClientLog[]) {
    for (const log of logs) {
      const connects = log.listener.filter((event) => event.event === 'connected').map((event) => event.at);
      this.windows.set(
        log.index,
        faults
          .filter((fault) => LISTENER_FAULTS.has(fault.kind))
          .map((fault) => ({
            start: fault.at,
            end: connects.find((at) => at >= fault.at) ?? fault.done,
          })),
      );
    }
  }

  /**
   * When staleness of a read by `client` that started at `readStart` counts from, for a superseding
   * change acknowledged at `ack`: the end of the last window that overlaps [ack, readStart], if later.
   */
  measureFrom(client: number, ack: number, readStart: number): number {
    let from = ack;
    for (const window of this.windows.get(client) ?? []) {
      if (window.start <= readStart && window.end >= ack && window.end > from) from = window.end;
    }
    return from;
  }

  /** The windows of every client, for the report. */
  all(): Array<{ client: number } & Window> {
    return [...this.windows].flatMap(([client, windows]) => windows.map((window) => ({ client, ...window })));
  }
}
