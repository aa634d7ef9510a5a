import type { ClientLog } from '../collector.js';
import type { FaultEvent } from '../faults.js';
import type { Findings } from './reads.js';

const EXAMPLES_KEPT = 5;

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

/**
 * What the fault windows take on trust, checked: a client whose L1 was in use when a listener fault hit must
 * say `disconnected` after it (else it kept serving L1 while events were lost, which the windows would excuse),
 * and no read may be answered from L1 between a client's `disconnected` and its next `connected`.
 */
export function checkListenerFaults(faults: FaultEvent[], logs: ClientLog[]): Findings {
  const findings: Findings = { count: 0, examples: [] };
  const note = (text: string) => {
    findings.count++;
    if (findings.examples.length < EXAMPLES_KEPT) findings.examples.push(text);
  };
  const cuts = faults.filter(
    (fault) => LISTENER_FAULTS.has(fault.kind) && fault.error === undefined && !/^0 /.test(fault.detail),
  );
  for (const log of logs) {
    const events = [...log.listener].sort((a, b) => a.at - b.at);
    for (const fault of cuts) {
      // In use at the injection: no event yet (trusted since init) or the last one before it was `connected`.
      const before = events.filter((event) => event.at < fault.at).at(-1);
      if (before?.event === 'disconnected') continue;
      if (!events.some((event) => event.event === 'disconnected' && event.at >= fault.at)) {
        note(`client ${log.index} never said disconnected after the ${fault.kind} fault (${fault.detail})`);
      }
    }
    let downSince: number | undefined;
    const down: Array<[number, number]> = [];
    for (const event of events) {
      if (event.event === 'disconnected') downSince ??= event.at;
      else if (downSince !== undefined) {
        down.push([downSince, event.at]);
        downSince = undefined;
      }
    }
    if (downSince !== undefined) down.push([downSince, Infinity]);
    for (const op of log.ops) {
      if (op.kind !== 'read' || op.tier !== 'l1') continue;
      if (down.some(([from, to]) => op.start > from && op.start < to)) {
        note(`client ${log.index} read ${op.key} from L1 while its listener was down`);
      }
    }
  }
  return findings;
}
