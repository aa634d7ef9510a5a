/** Past this many remembered stamps, stamps no fill in flight can need are dropped. */
const PRUNE_ABOVE = 1024;
/**
 * Past this many, while some fill stays in flight (one that never settles keeps every later stamp), the log
 * forgets them and counts everything as changed: the fills in flight then refuse to store, nothing worse.
 */
const FORGET_ABOVE = 100_000;

/**
 * Remembers which keys and tags table events invalidated while fills were in flight, so a fill can
 * tell whether what it loaded may already be stale: the guard against "load, table changes, event
 * evicts nothing, fill writes the old value". A fill takes a token before it loads and asks
 * `changedSince(token, …)` before and after it writes.
 */
export class InvalidationLog {
  private sequence = 0;
  private everythingAt = 0;
  private readonly keys = new Map<string, number>();
  private readonly tags = new Map<string, number>();
  /** Tokens of fills in flight, with how many fills hold each. */
  private readonly active = new Map<number, number>();

  begin(): number {
    const token = this.sequence;
    this.active.set(token, (this.active.get(token) ?? 0) + 1);
    return token;
  }

  end(token: number): void {
    const holders = (this.active.get(token) ?? 1) - 1;
    if (holders > 0) this.active.set(token, holders);
    else this.active.delete(token);
    if (this.active.size === 0) {
      this.keys.clear();
      this.tags.clear();
    } else if (this.keys.size + this.tags.size > PRUNE_ABOVE) {
      const oldest = Math.min(...this.active.keys());
      for (const stamps of [this.keys, this.tags]) {
        for (const [name, stamp] of stamps) if (stamp <= oldest) stamps.delete(name);
      }
    }
  }

  markKeys(keys: Iterable<string>): void {
    const stamp = ++this.sequence;
    // With no fill in flight no one can ask about this stamp: counting is enough.
    if (this.active.size === 0) return;
    for (const key of keys) this.keys.set(key, stamp);
    this.bound();
  }

  markTags(tags: Iterable<string>): void {
    const stamp = ++this.sequence;
    if (this.active.size === 0) return;
    for (const tag of tags) this.tags.set(tag, stamp);
    this.bound();
  }

  /** Keys and tags remembered now (for monitoring and tests). */
  get remembered(): number {
    return this.keys.size + this.tags.size;
  }

  markEverything(): void {
    this.everythingAt = ++this.sequence;
  }

  private bound(): void {
    if (this.remembered <= FORGET_ABOVE) return;
    this.keys.clear();
    this.tags.clear();
    this.markEverything();
  }

  changedSince(token: number, key: string, tags: readonly string[] = []): boolean {
    if (this.everythingAt > token) return true;
    if ((this.keys.get(key) ?? 0) > token) return true;
    return tags.some((tag) => (this.tags.get(tag) ?? 0) > token);
  }
}
