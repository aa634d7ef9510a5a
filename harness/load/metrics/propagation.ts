import type { History } from '../assertions/history.js';
import type { ClientLog } from '../collector.js';
import { type LatencyStats, summarize } from './summary.js';

/** The delays of the events that came after the writer's acknowledgement (count: how many did). */
export interface Propagation extends LatencyStats {
  /** Events matched to a write by another process. */
  events: number;
  /** Events that arrived before the writer had its own acknowledgement: no staleness window at all. */
  beforeAck: number;
  /** The delays after the acknowledgement, in ms, for the histogram. */
  delaysMs: number[];
}

/**
 * How long after a write was acknowledged to its writer the other processes had its change event:
 * every process's 'change' event for a set, matched by version to the write that made it, minus the
 * time the write returned. From that moment the process's L1 no longer serves the older value; an event
 * that came before the write returned left no window at all, and is counted apart.
 */
export function propagationDelays(logs: ClientLog[], history: History): Propagation {
  const afterAck: number[] = [];
  let events = 0;
  let beforeAck = 0;
  for (const log of logs) {
    for (const change of log.changes) {
      const write = history.setsByVersion.get(change.version);
      if (!write || write.writer === log.index) continue;
      const delay = change.at - write.ack;
      events++;
      if (delay < 0) beforeAck++;
      else afterAck.push(delay);
    }
  }
  return { ...summarize(afterAck), events, beforeAck, delaysMs: afterAck };
}
