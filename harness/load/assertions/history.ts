import type { ClientLog } from '../collector.js';
import type { OpRecord } from '../protocol.js';
import { isWrapKey } from '../workload.js';

/**
 * How long after a delete or clear failed its statement may still have committed (a connection lost with its
 * COMMIT in flight): a set that began later than that cannot have been removed by it.
 */
const FAILED_REMOVAL_SLACK_MS = 1000;

/**
 * One acknowledged change to a key, placed in the key's history by the version PostgreSQL gave it.
 * A set of version v ranks 2v; a delete that removed the row of version v ranks 2v+1: after that
 * set, before any later one. Per key, version order is commit order (the row lock orders writers,
 * and the trigger draws the version under it), so rank order is the order the database applied them.
 *
 * A clear is a change to every key of the namespace: its marker's version c (drawn from the same sequence,
 * so no row has it) hides every row below c, whenever that row committed; it ranks 2c, after every set it
 * hides and before every set it does not. A write that drew its version before the clear and committed
 * after it stays hidden: rank order is still the order in which the values became visible or hidden.
 */
export interface Change {
  kind: 'set' | 'delete' | 'clear';
  rank: number;
  writer: number;
  start: number;
  /** When the operation that made the change returned. */
  ack: number;
}

/** A key's changes in rank order, with what the read checks ask of them answered quickly. */
export class KeyHistory {
  readonly changes: Change[] = [];
  /** Deletes and clears that failed: they may or may not have been applied, but not after they failed. */
  readonly uncertainRemovals: Array<{ start: number; end: number }> = [];
  private suffixMinAck: number[] = [];
  private readonly ownMinAck = new Map<number, number[]>();

  add(change: Change): void {
    this.changes.push(change);
  }

  /** Sorts by rank and precomputes the suffix minima; call once, after the last add. */
  seal(): void {
    this.changes.sort((a, b) => a.rank - b.rank);
    this.suffixMinAck = suffixMinima(this.changes.map((change) => change.ack));
    const writers = new Set(this.changes.map((change) => change.writer));
    for (const writer of writers) {
      this.ownMinAck.set(
        writer,
        suffixMinima(this.changes.map((change) => (change.writer === writer ? change.ack : Infinity))),
      );
    }
  }

  /** The earliest acknowledgement of any change that supersedes rank `rank` (Infinity if none). */
  earliestAckAbove(rank: number, writer?: number): number {
    const minima = writer === undefined ? this.suffixMinAck : this.ownMinAck.get(writer);
    if (!minima) return Infinity;
    return minima[this.firstAbove(rank)] ?? Infinity;
  }

  /** The highest-ranked change acknowledged before `time`: what a read starting then must at least see. */
  newestAckedBefore(time: number): Change | undefined {
    for (let index = this.changes.length - 1; index >= 0; index--) {
      const change = this.changes[index] as Change;
      if (change.ack < time) return change;
    }
    return undefined;
  }

  /**
   * Whether a delete or clear ranked above `missed` started before `time`, or one that failed may have removed
   * it (it started before `time` and failed after `missed` began): either may explain an absence.
   */
  removalAboveStartedBefore(missed: Change, time: number): boolean {
    for (let index = this.firstAbove(missed.rank); index < this.changes.length; index++) {
      const change = this.changes[index] as Change;
      if (change.kind !== 'set' && change.start < time) return true;
    }
    return this.uncertainRemovals.some(
      (removal) => removal.start < time && missed.start < removal.end + FAILED_REMOVAL_SLACK_MS,
    );
  }

  private firstAbove(rank: number): number {
    let low = 0;
    let high = this.changes.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.changes[middle] as Change).rank <= rank) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function suffixMinima(values: number[]): number[] {
  const minima = new Array<number>(values.length + 1).fill(Infinity);
  for (let index = values.length - 1; index >= 0; index--) {
    minima[index] = Math.min(values[index] as number, minima[index + 1] as number);
  }
  return minima;
}

export interface History {
  keys: Map<string, KeyHistory>;
  /** Acknowledged sets by the `writer:seq` their value carries. */
  setsByValue: Map<string, Change>;
  /** Acknowledged sets by their version (which is unique across the table). */
  setsByVersion: Map<number, Change>;
  /** `writer:seq` of writes that failed: if a read returns one, its version is unknown. */
  uncertainValues: Set<string>;
}

export const valueId = (writer: number, seq: number) => `${writer}:${seq}`;

/**
 * Builds every key's history from the clients' records of writes, deletes, deletes inside reads, and
 * clears (each of which goes into the history of every key).
 */
export function buildHistory(logs: ClientLog[]): History {
  const history: History = {
    keys: new Map(),
    setsByValue: new Map(),
    setsByVersion: new Map(),
    uncertainValues: new Set(),
  };
  const keyHistory = (key: string) => {
    let found = history.keys.get(key);
    if (!found) {
      found = new KeyHistory();
      history.keys.set(key, found);
    }
    return found;
  };
  const clears: Change[] = [];
  const uncertainClears: Array<{ start: number; end: number }> = [];
  for (const log of logs) {
    for (const op of log.ops) {
      if (op.kind === 'clear') {
        clears.push(...clearChanges(log.index, op));
        if (op.error !== undefined) uncertainClears.push({ start: op.start, end: op.end });
      } else if (!isWrapKey(op.key)) {
        addOp(history, keyHistory(op.key), log.index, op);
      }
    }
  }
  // Only keys something touched have a history: a key nobody wrote is missing whatever a clear did.
  for (const key of history.keys.values()) {
    for (const clear of clears) key.add(clear);
    key.uncertainRemovals.push(...uncertainClears);
    key.seal();
  }
  return history;
}

/** A clear as a change (for every key): ranked by its marker's version. */
function clearChanges(writer: number, op: OpRecord): Change[] {
  return (op.effects ?? [])
    .filter((effect) => effect.op === 'clear' && effect.version !== undefined)
    .map((effect) => ({
      kind: 'clear',
      rank: 2 * (effect.version as number),
      writer,
      start: op.start,
      ack: op.end,
    }));
}

function addOp(history: History, key: KeyHistory, writer: number, op: OpRecord): void {
  for (const effect of op.effects ?? []) {
    if (effect.version === undefined) continue;
    // Clears are added to every key apart (clearChanges); nothing but a clear records one.
    if (effect.op === 'clear') continue;
    const change: Change = {
      kind: effect.op,
      rank: effect.op === 'set' ? 2 * effect.version : 2 * effect.version + 1,
      writer,
      start: op.start,
      // Acknowledged when the operation returned to the application, as read-your-writes means it.
      ack: op.end,
    };
    key.add(change);
    if (effect.op !== 'set') continue;
    history.setsByVersion.set(effect.version, change);
    if (op.seq !== undefined) history.setsByValue.set(valueId(writer, op.seq), change);
  }
  if (op.error === undefined) return;
  if (op.kind === 'write' && op.seq !== undefined) history.uncertainValues.add(valueId(writer, op.seq));
  if (op.kind === 'delete') key.uncertainRemovals.push({ start: op.start, end: op.end });
}
