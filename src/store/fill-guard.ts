/**
 * Decides whether a value read from (or written to) PostgreSQL may enter L1. It guards the race where a
 * read starts, another process commits a newer version and its event arrives, and only then the read
 * returns the older row: without the guard, L1 would serve that older row until it expires.
 *
 * Every read or write of an entry registers before it goes to the database. While it is in flight, the
 * guard remembers the newest version that change events announced for that entry; when it returns, an
 * older version is refused. A flush (listener lost, `flush` event, own clear) bumps an epoch that voids
 * every operation in flight. Only entries with an operation in flight are remembered.
 */
export class FillGuard {
  private epoch = 0;
  private readonly inFlight = new Map<string, { operations: number; newest: number; namespace: string }>();

  /** Registers an operation on an entry; hand the ticket back to `end` whatever happens. */
  begin(namespace: string, id: string): FillTicket {
    const entry = this.inFlight.get(id);
    if (entry) entry.operations++;
    else this.inFlight.set(id, { operations: 1, newest: 0, namespace });
    return { id, epoch: this.epoch, startedAt: performance.now() };
  }

  /** Ends an operation; true when the version it saw may enter L1. Call without a version on failure. */
  end(ticket: FillTicket, version?: number): boolean {
    const entry = this.inFlight.get(ticket.id);
    if (!entry) return false;
    if (--entry.operations === 0) this.inFlight.delete(ticket.id);
    return version !== undefined && ticket.epoch === this.epoch && version >= entry.newest;
  }

  observe(id: string, version: number): void {
    const entry = this.inFlight.get(id);
    if (entry && version > entry.newest) entry.newest = version;
  }

  observeClear(namespace: string, version: number): void {
    for (const entry of this.inFlight.values()) {
      if (entry.namespace === namespace && version > entry.newest) entry.newest = version;
    }
  }

  /** Voids every operation in flight. */
  reset(): void {
    this.epoch++;
  }
}

export interface FillTicket {
  readonly id: string;
  readonly epoch: number;
  /**
   * When the operation began (`performance.now()`, lru-cache's clock). The row's expiry was computed later,
   * by the database, so an L1 entry counted from here cannot outlive its row.
   */
  readonly startedAt: number;
}
