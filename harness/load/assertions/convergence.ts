import type { SettledState } from '../settle.js';
import type { Findings } from './reads.js';

const EXAMPLES_KEPT = 5;
/**
 * L1 gives an entry the row's remaining lifetime when the row is read, so it can outlive the row by
 * the time the read took to come back. An entry whose row expired less than this ago is not a finding.
 */
const EXPIRY_SLACK_MS = 250;

export interface ConvergenceCheck {
  /** L1 entries compared with the table. */
  entries: number;
  clients: number;
  /** Clients that were not listening when the last fence was written: their L1 proves nothing. */
  notListening: number[];
  mismatches: Findings;
}

/** After the last event has arrived: every L1 entry of every client matches its row (version and value). */
export function checkConvergence(settled: SettledState): ConvergenceCheck {
  const check: ConvergenceCheck = {
    entries: 0,
    clients: settled.replies.size,
    notListening: [],
    mismatches: { count: 0, examples: [] },
  };
  const mismatch = (text: string) => {
    check.mismatches.count++;
    if (check.mismatches.examples.length < EXAMPLES_KEPT) check.mismatches.examples.push(text);
  };
  for (const [client, reply] of settled.replies) {
    if (!reply.arrived || !reply.coherent) check.notListening.push(client);
    for (const entry of reply.l1) {
      check.entries++;
      const row = settled.table.get(entry.key);
      if (!row) {
        mismatch(`client ${client}: ${entry.key} v${entry.version} in L1, no row in the table`);
      } else if (row.version !== entry.version || row.value !== entry.value) {
        mismatch(`client ${client}: ${entry.key} is v${entry.version} in L1, v${row.version} in the table`);
      } else if (row.expiresAt !== undefined && row.nowMs - row.expiresAt > EXPIRY_SLACK_MS) {
        mismatch(`client ${client}: ${entry.key} in L1, its row expired ${row.nowMs - row.expiresAt} ms ago`);
      }
    }
  }
  return check;
}
