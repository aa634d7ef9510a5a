import type { ClientLog } from '../collector.js';
import { writerName } from '../prefill.js';
import type { OpRecord } from '../protocol.js';
import { isWrapKey } from '../workload.js';
import type { FaultWindows } from './fault-windows.js';
import { type Change, type History, type KeyHistory, valueId } from './history.js';

const EXAMPLES_KEPT = 5;
/** A row may be gone up to this much before its nominal expiry: the database's clock stamps it a moment after the client's. */
const EXPIRY_SLACK_MS = 50;

/** A count of failures and the first few, described. */
export interface Findings {
  count: number;
  examples: string[];
}

const noFindings = (): Findings => ({ count: 0, examples: [] });

function note(findings: Findings, describe: () => string): void {
  findings.count++;
  if (findings.examples.length < EXAMPLES_KEPT) findings.examples.push(describe());
}

export interface ReadChecks {
  /** Successful reads of workload keys whose answer could be placed in the key's history. */
  checked: number;
  /** Reads that returned the value of a write that failed (so its version is unknown). */
  unverifiable: number;
  /** Reads that returned a value no client wrote. */
  phantoms: Findings;
  /** Reads in a process that did not see that process's own acknowledged write or delete. */
  readYourWrites: Findings;
  /** Reads that returned something already superseded when they began; staleness in ms for each. */
  staleness: number[];
  /** Stale reads beyond the bound. */
  beyondBound: Findings;
}

interface ReadContext {
  client: number;
  read: OpRecord;
  key: KeyHistory | undefined;
}

/**
 * Read-your-writes and bounded staleness, from the recorded reads and the keys' histories:
 * - a read that returned rank r is stale by (read start - the earliest acknowledgement of any change
 *   ranked above r), when positive; measured from recovery when a fault came in between;
 * - a miss is stale when the newest change acknowledged before the read is a live set that no delete or
 *   clear started before the read ended (and no expiry) can explain; a miss whose newest change acknowledged
 *   before it is a delete or a clear is what it should be;
 * - read-your-writes is the same question asked of the reader's own changes, with no bound and no grace.
 */
export function checkReads(
  logs: ClientLog[],
  history: History,
  windows: FaultWindows,
  boundMs: number,
  ttlMs: number | undefined,
): ReadChecks {
  const checks: ReadChecks = {
    checked: 0,
    unverifiable: 0,
    phantoms: noFindings(),
    readYourWrites: noFindings(),
    staleness: [],
    beyondBound: noFindings(),
  };
  const stale = (context: ReadContext, ack: number, what: string) => {
    const from = windows.measureFrom(context.client, ack, context.read.start);
    const staleness = context.read.start - from;
    if (staleness <= 0) return;
    checks.staleness.push(staleness);
    if (staleness > boundMs) {
      note(
        checks.beyondBound,
        () => `client ${context.client} read ${context.read.key} ${what}, ${staleness.toFixed(1)} ms stale`,
      );
    }
  };
  for (const log of logs) {
    for (const read of log.ops) {
      if (read.kind !== 'read' || read.error !== undefined || isWrapKey(read.key)) continue;
      const context: ReadContext = { client: log.index, read, key: history.keys.get(read.key) };
      if (read.seen) {
        const id = valueId(...read.seen);
        const set = history.setsByValue.get(id);
        if (!set) {
          if (history.uncertainValues.has(id)) checks.unverifiable++;
          else
            note(checks.phantoms, () => `client ${log.index} read ${read.key} = ${id}, which nobody wrote`);
          continue;
        }
        checks.checked++;
        checkValue(checks, context, set, stale);
      } else {
        checks.checked++;
        checkMiss(checks, context, ttlMs, stale);
      }
    }
  }
  return checks;
}

type StaleReporter = (context: ReadContext, ack: number, what: string) => void;

function checkValue(checks: ReadChecks, context: ReadContext, set: Change, stale: StaleReporter): void {
  const { key, read, client } = context;
  if (!key) return;
  const superseded = key.earliestAckAbove(set.rank);
  if (superseded < read.start) stale(context, superseded, `the value of ${writerName(set.writer)}`);
  if (key.earliestAckAbove(set.rank, client) < read.start) {
    note(
      checks.readYourWrites,
      () =>
        `client ${client} read ${read.key} and got the value of ${writerName(set.writer)}, older than its own acknowledged change`,
    );
  }
}

function checkMiss(
  checks: ReadChecks,
  context: ReadContext,
  ttlMs: number | undefined,
  stale: StaleReporter,
): void {
  const { key, read, client } = context;
  const newest = key?.newestAckedBefore(read.start);
  if (!key || !newest || newest.kind !== 'set') return;
  const mayHaveExpired = ttlMs !== undefined && read.end >= newest.start + ttlMs - EXPIRY_SLACK_MS;
  if (mayHaveExpired || key.removalAboveStartedBefore(newest, read.end)) return;
  stale(context, newest.ack, `as missing (${aroundRead(key, newest, read)})`);
  if (newest.writer === client) {
    note(
      checks.readYourWrites,
      () =>
        `client ${client} read ${read.key} as missing after its own acknowledged write (${aroundRead(key, newest, read)})`,
    );
  }
}

/** The key's changes from `from` on, timed against the read: the evidence a finding about a miss rests on. */
function aroundRead(key: KeyHistory, from: Change, read: OpRecord): string {
  const at = (time: number) => `${(time - read.start).toFixed(1)} ms`;
  return key.changes
    .filter((change) => change.rank >= from.rank)
    .slice(0, 4)
    .map(
      (change) =>
        `${change.kind} by ${writerName(change.writer)}, rank ${change.rank}, started ${at(change.start)}, acked ${at(change.ack)}`,
    )
    .join('; ')
    .concat(`; read took ${(read.end - read.start).toFixed(1)} ms`);
}
