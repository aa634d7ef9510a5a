import type { CacheChange } from '../notify/change-event.js';
import type { ChangeWaiters } from './change-waiters.js';
import type { ClearsSeen } from './clears-seen.js';
import { digestEntryId, entryId, lookupId } from './entry-id.js';
import { FillGuard, type FillTicket } from './fill-guard.js';
import type { L1, L1Entry } from './l1.js';
import type { CacheStats } from './stats.js';
import type { WritesInFlight } from './writes-in-flight.js';

export type InvalidationReason = 'event' | 'clear' | 'flush' | 'disconnected';

export interface Invalidation {
  namespace?: string;
  key?: string;
  reason: InvalidationReason;
}

/** What the cache shares with its L1's bookkeeping, and hears from it. */
export interface CoherentL1Host {
  counters: Omit<CacheStats, 'listener'>;
  waiters: ChangeWaiters;
  clears: ClearsSeen;
  writing: WritesInFlight;
  invalidated(invalidation: Invalidation): void;
  changed(change: CacheChange): void;
}

/**
 * The L1 as change events keep it: what may enter it (a read or write that began before a newer change was
 * heard may not: the fill guard), what leaves it (change events, own deletes and clears, a flush), and whether
 * it may be read at all (`trusted`). Without an L1 (off, or no notifications and no ttl) it holds nothing.
 */
export class CoherentL1 {
  /** L1 is read and filled only while this is true: listener connected, or a TTL-bounded L1 without one. */
  trusted: boolean;
  private readonly guard = new FillGuard();

  constructor(
    readonly l1: L1 | undefined,
    trusted: boolean,
    private readonly host: CoherentL1Host,
  ) {
    this.trusted = trusted;
  }

  /** Registers an operation with the fill guard before it goes to the database (none when L1 is off). */
  begin(namespace: string, key: string): FillTicket | undefined {
    return this.l1 ? this.guard.begin(namespace, entryId(namespace, key)) : undefined;
  }

  /** One ticket per key, or none: a key that is refused ends the tickets begun before it. */
  beginAll(namespace: string, keys: string[]): Array<FillTicket | undefined> {
    const tickets: Array<FillTicket | undefined> = [];
    try {
      for (const key of keys) tickets.push(this.begin(namespace, key));
    } catch (error) {
      for (const ticket of tickets) this.abandon(ticket);
      throw error;
    }
    return tickets;
  }

  abandon(ticket: FillTicket | undefined): void {
    if (ticket) this.guard.end(ticket);
  }

  /**
   * Ends the ticket; the value enters L1 only if no newer change arrived while it was in flight. Its version
   * counts as seen, so that an older read still in flight (one that began before our own write) is refused.
   */
  fill(ticket: FillTicket | undefined, value: string, version: number, ttlLeft: number | undefined): void {
    if (!ticket || !this.l1) return;
    this.guard.observe(ticket.id, version);
    const allowed = this.guard.end(ticket, version);
    if (!this.trusted) return;
    if (allowed) {
      this.l1.set(ticket.id, value, version, ttlLeft, ticket.startedAt);
    } else {
      this.host.counters.refusedFills++;
      // What L1 holds may be that newer version (our own write): only what is no newer than this goes.
      this.l1.evictOlderThan(ticket.id, version + 1);
    }
  }

  /** What L1 holds while it is trusted and no own write of it is in flight, counted nowhere. */
  entry(namespace: string, key: string): L1Entry | undefined {
    if (!this.l1 || !this.trusted || typeof key !== 'string') return undefined;
    // A key PostgreSQL would not store misses (and PostgreSQL refuses it).
    const id = lookupId(namespace, key);
    if (id === undefined) return undefined;
    return this.host.writing.covers(namespace, id) ? undefined : this.l1.get(id);
  }

  /** After our own delete: drop the entry, and refuse any read in flight that returns the deleted row. */
  forgetOwn(namespace: string, key: string, deletedVersion: number | undefined): void {
    const id = entryId(namespace, key);
    if (deletedVersion !== undefined) this.guard.observe(id, deletedVersion + 1);
    this.l1?.delete(id);
  }

  /** A change event: it evicts what it makes stale, and voids reads in flight that would bring that back. */
  apply(change: CacheChange): void {
    const { counters, waiters, clears } = this.host;
    if (change.op === 'flush') {
      this.flush('flush');
    } else if (change.op === 'clear') {
      this.guard.observeClear(change.namespace, change.version);
      this.evictCleared(change.namespace, change.version, clears.notify(change.namespace, change.version));
    } else {
      const id =
        change.key === undefined
          ? digestEntryId(change.namespace, change.keyDigest)
          : entryId(change.namespace, change.key);
      this.guard.observe(id, change.version);
      waiters.wake(id);
      if (this.l1?.evictOlderThan(id, change.version)) {
        counters.evictions.event++;
        this.host.invalidated({ namespace: change.namespace, key: change.key, reason: 'event' });
      }
    }
    this.host.changed(change);
  }

  /** Our own clear's answer: voids fills in flight now rather than waiting for the event to come back. */
  clearedOwn(namespace: string, version: number, first: boolean): void {
    this.guard.reset();
    this.evictCleared(namespace, version, first);
  }

  /**
   * Evicts what a clear hides, the namespace's entries older than it, on its answer (our own) and on its event
   * alike: what entered L1 since is newer and stays, and an event forged with its version cannot stand in for
   * the answer. `first`: the first of the two to come, which is announced (the second only if it evicted).
   */
  private evictCleared(namespace: string, version: number, first: boolean): void {
    if (first) this.host.waiters.wakeWhere((id) => id.startsWith(`${namespace}\u0000`));
    const removed = this.l1?.deleteNamespace(namespace, version) ?? 0;
    this.host.counters.evictions.clear += removed;
    if (first || removed > 0) this.host.invalidated({ namespace, reason: 'clear' });
  }

  /** Empties L1 and voids every read and write in flight: changes may have gone unheard. */
  flush(reason: 'flush' | 'disconnected'): void {
    this.host.clears.forget();
    this.host.waiters.wakeWhere(() => true);
    this.guard.reset();
    this.host.counters.evictions.flush += this.l1?.clear() ?? 0;
    this.host.invalidated({ reason });
  }
}
