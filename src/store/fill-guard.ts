import { LRUCache } from 'lru-cache';

/**
 * Decides whether a value read from (or written to) PostgreSQL may enter L1. It guards the race where a
 * read starts, another process commits a newer version and its event arrives, and only then the read
 * returns the older row: without the guard, L1 would serve that older row until it expires.
 *
 * It remembers, for a while, the newest version each change event announced, and refuses older fills.
 * A flush (listener lost, `flush` event, own clear) bumps an epoch that voids every fill in flight.
 */
export class FillGuard {
  private epoch = 0;
  /** Versions below this are refused: raised when a remembered version is pushed out for room. */
  private floor = 0;
  private readonly newest: LRUCache<string, number>;
  private readonly clearedAt = new Map<string, number>();

  /**
   * @param windowMs how long to remember a version; must outlast the slowest read (the statement timeout).
   * @param capacity how many keys to remember at once.
   */
  constructor(windowMs: number, capacity: number) {
    this.newest = new LRUCache<string, number>({
      max: capacity,
      ttl: windowMs,
      dispose: (version, _id, reason) => {
        // Forgetting a version early (for room, not age) must not let an older fill through.
        if (reason === 'evict' && version > this.floor) this.floor = version;
      },
    });
  }

  /** Taken before a read or write starts; handed back to `mayFill` when it returns. */
  begin(): number {
    return this.epoch;
  }

  observe(id: string, version: number): void {
    const known = this.newest.get(id);
    if (known === undefined || version > known) this.newest.set(id, version);
  }

  observeClear(namespace: string, version: number): void {
    const known = this.clearedAt.get(namespace) ?? 0;
    if (version > known) this.clearedAt.set(namespace, version);
  }

  /** Voids every fill in flight. */
  reset(): void {
    this.epoch++;
  }

  mayFill(token: number, namespace: string, id: string, version: number): boolean {
    if (token !== this.epoch || version < this.floor) return false;
    if (version < (this.clearedAt.get(namespace) ?? 0)) return false;
    const newest = this.newest.get(id);
    return newest === undefined || version >= newest;
  }
}
