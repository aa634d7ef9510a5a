import { AsyncLocalStorage } from 'node:async_hooks';
import type { PostgresAdapter } from '../../src/index.js';
import type { Effect } from './protocol.js';

/** What one operation learned while it ran: the changes the database acknowledged, and the read tier. */
export interface OpContext {
  effects: Effect[];
  tier?: 'l1' | 'postgres' | undefined;
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

/**
 * The consistency checks order every change to a key by the version PostgreSQL gave it. PostgresCache
 * learns those versions (`RETURNING version`) but its Keyv methods answer only true/false, so the
 * client process wraps its cache's adapter: each write and delete still runs unchanged against the
 * database, and the version it returns is noted on the operation that caused it. Keyv may delete an
 * entry inside a read (when its own envelope says expired); that change is noted on the read.
 */
export function tapVersions(adapter: PostgresAdapter): void {
  const writeEntry = adapter.writeEntry.bind(adapter);
  const removeEntry = adapter.removeEntry.bind(adapter);
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
}
