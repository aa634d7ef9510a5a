/** What a statement reads or writes: some keys of a namespace, or (without keys) all of it. */
export interface Claim {
  namespace: string;
  keys?: readonly string[];
  writes: boolean;
}

// Keys hold no NUL, so the last NUL of an id ends its namespace.
const keyId = (writes: boolean, namespace: string, key: string) =>
  `${writes ? 'w' : 'r'}\u0000${namespace}\u0000${key}`;
const namespaceId = (namespace: string) => `n\u0000${namespace}`;

/**
 * What the statements waiting for a connection read and write, by their place in the queue, so that a call
 * merged into an earlier-queued statement never overtakes a later-queued one on its key. A claim lasts until
 * its statement leaves the queue, so what is held stays bounded by what waits.
 */
export class QueueClaims {
  /** Per claim: the latest queue position that holds it. */
  private readonly latest = new Map<string, number>();
  /** Per queue position still waiting: the claims it made. */
  private readonly byPosition = new Map<number, string[]>();
  /** Positions leave the queue in order: every one up to this has left. */
  private left = 0;

  /** Records what the statement at `position` reads or writes (a merged one claims as calls join it). */
  add(position: number, { namespace, keys, writes }: Claim): void {
    // Gone from the queue: nothing queued before it is left to overtake.
    if (position <= this.left) return;
    const ids =
      keys === undefined
        ? writes
          ? [namespaceId(namespace)]
          : []
        : keys.map((key) => keyId(writes, namespace, key));
    let held = this.byPosition.get(position);
    if (held === undefined) {
      held = [];
      this.byPosition.set(position, held);
    }
    for (const id of ids) {
      // A call joining an older statement must not hide a newer one's claim.
      if ((this.latest.get(id) ?? 0) < position) this.latest.set(id, position);
      held.push(id);
    }
  }

  /**
   * Whether a call on `key` may join the statement at `position`: not when a statement queued after it writes
   * the key or clears its namespace, nor, for a write, when one reads the key.
   */
  mayJoin(position: number, namespace: string, key: string, writes: boolean): boolean {
    if ((this.latest.get(namespaceId(namespace)) ?? 0) > position) return false;
    if ((this.latest.get(keyId(true, namespace, key)) ?? 0) > position) return false;
    return !writes || (this.latest.get(keyId(false, namespace, key)) ?? 0) <= position;
  }

  /** The statement at `position` left the queue (it started, or gave up waiting). */
  release(position: number): void {
    this.left = Math.max(this.left, position);
    const ids = this.byPosition.get(position);
    if (ids === undefined) return;
    this.byPosition.delete(position);
    for (const id of ids) if (this.latest.get(id) === position) this.latest.delete(id);
  }

  /** How many claims are held (for tests). */
  get size(): number {
    return this.latest.size;
  }
}
