import { AsyncLocalStorage } from 'node:async_hooks';
import type { PostgresCache } from '../../src/index.js';
import { now } from '../clock.js';
import type { Effect } from './protocol.js';

/** The longest a read's answer is held back waiting for its key's next change event (see `tapVersions`). */
export const HOLD_CAP_MS = 100;

/** What one operation learned while it ran: the changes the database acknowledged, and the read tier. */
export interface OpContext {
  effects: Effect[];
  tier?: 'l1' | 'postgres' | undefined;
  /** A workload read whose answer from PostgreSQL is to be held back (see `tapVersions`). */
  hold?: boolean;
  /** How long its answer was held back, in ms, when it was. */
  heldMs?: number;
  /** The clear marker's version a wrap() fill's stamp saw under the lock (0: none yet). */
  clearedSeen?: number;
}

const current = new AsyncLocalStorage<OpContext>();

/** Runs one operation in `context`; the tap and the cache's events fill it in as it runs, even if it fails. */
export function inOpContext<T>(context: OpContext, run: () => Promise<T>): Promise<T> {
  return current.run(context, run);
}

/** Notes where the running operation's read was answered (called from the cache's 'hit' event, which fires inside it). */
export function noteTier(tier: 'l1' | 'postgres'): void {
  const context = current.getStore();
  if (context) context.tier = tier;
}

/** The clear marker's version the running wrap() fill's stamp saw, if it took one (see `tapVersions`). */
export function clearedSeen(): number | undefined {
  return current.getStore()?.clearedSeen;
}

/**
 * The consistency checks order every change to a key by the version PostgreSQL gave it. PostgresCache
 * learns those versions (`RETURNING version`) but its Keyv methods answer only true/false, so the
 * client process wraps its cache's adapter: each write, delete and clear still runs unchanged against the
 * database, and the version it returns is noted on the operation that caused it (a clear's is its
 * namespace's marker: every row below it is hidden). Keyv may delete an entry inside a read (when its own
 * envelope says expired); that change is noted on the read. A wrap() fill's stamp, taken under its lock before
 * the loader, notes the clear marker's version it saw, so the stampede check can tell a key a clear emptied.
 *
 * Reads are tapped too, to make the fill guard's race happen: a read is in flight, another process commits a
 * newer version of its key and the event arrives, and only then the read returns the older row (which must
 * not enter L1). Left to chance that takes a long hostile run to hit once; so a read run with `hold` (the
 * worker picks a share of its reads, --hold-reads, and runs them beside its lanes) that goes to PostgreSQL
 * holds its answer until the key's next change event has reached this process, at most HOLD_CAP_MS, before
 * handing it to the cache. The time held is noted on the read (`heldMs`): it is not the read's latency, and
 * the figures keep such reads apart.
 */
export function tapVersions(cache: PostgresCache): void {
  const { adapter } = cache;
  const writeEntry = adapter.writeEntry.bind(adapter);
  const removeEntry = adapter.removeEntry.bind(adapter);
  const clearNamespace = adapter.clearNamespace.bind(adapter);
  const readEntry = adapter.readEntry.bind(adapter);
  const changeStamp = adapter.changeStamp.bind(adapter);
  adapter.writeEntry = async (...args) => {
    const version = await writeEntry(...args);
    current.getStore()?.effects.push({ op: 'set', version });
    return version;
  };
  adapter.removeEntry = async (...args) => {
    const removed = await removeEntry(...args);
    current.getStore()?.effects.push({ op: 'delete', version: removed?.version });
    return removed;
  };
  adapter.clearNamespace = async (...args) => {
    const version = await clearNamespace(...args);
    current.getStore()?.effects.push({ op: 'clear', version });
    return version;
  };
  adapter.changeStamp = async (...args) => {
    const stamp = await changeStamp(...args);
    const context = current.getStore();
    if (context) context.clearedSeen = stamp.cleared ?? 0;
    return stamp;
  };
  adapter.readEntry = async (namespace, key, client) => {
    const context = current.getStore();
    // A lock holder's read (client given) is wrap()'s, never held; nor is anything outside a workload read.
    if (!context?.hold || client !== undefined) {
      return readEntry(namespace, key, client);
    }
    // Armed before the query goes out: an event that arrives while it runs ends the hold at once.
    const stop = new AbortController();
    const changed = cache.waitForChange(namespace, key, HOLD_CAP_MS, stop.signal);
    try {
      const entry = await readEntry(namespace, key);
      const answered = now();
      await changed;
      context.heldMs = now() - answered;
      return entry;
    } finally {
      stop.abort();
    }
  };
}
