/**
 * What a statement reads or writes: some keys of a namespace, all of a namespace (no keys: a clear), or
 * rows of any namespace (no namespace: a tag eviction, whose keys are only known once it has run).
 */
export interface Claim {
  namespace?: string | undefined;
  keys?: readonly string[] | undefined;
  writes: boolean;
}

// Keys and namespaces hold no NUL, so the ids cannot collide.
const keyId = (writes: boolean, namespace: string, key: string) =>
  `${writes ? 'w' : 'r'}\u0000${namespace}\u0000${key}`;
const namespaceId = (namespace: string) => `n\u0000${namespace}`;
const TABLE_ID = 't';

/** A claim as ids: one per key read or written, one for a whole namespace, or one for the whole table. */
export function claimIds({ namespace, keys, writes }: Claim): string[] {
  if (namespace === undefined) return writes ? [TABLE_ID] : [];
  if (keys === undefined) return writes ? [namespaceId(namespace)] : [];
  return keys.map((key) => keyId(writes, namespace, key));
}

/** The namespace of a key id (`r`/`w`, NUL, namespace, NUL, key). */
const namespaceOfKeyId = (id: string) => id.slice(2, id.indexOf('\u0000', 2));

/** The ids of claims that may not run beside (nor be overtaken by) one holding `id`. */
function conflictsOf(id: string): string[] {
  if (id === TABLE_ID) return [];
  if (id[0] === 'n') return [id, TABLE_ID];
  const rest = id.slice(1);
  const ids = [`w${rest}`, namespaceId(namespaceOfKeyId(id)), TABLE_ID];
  if (id[0] === 'w') ids.push(`r${rest}`);
  return ids;
}

/**
 * The claims of the statements running now, so that a statement on the same key as one in flight waits for
 * it: on different connections, two statements sent in order may commit in either order.
 */
export class RunningClaims {
  private readonly held = new Map<string, number>();
  /** Per namespace, how many running keyed claims it has (what a clear of it must wait for). */
  private readonly perNamespace = new Map<string, number>();
  private total = 0;

  add(ids: readonly string[]): void {
    for (const id of ids) this.count(id, 1);
  }

  remove(ids: readonly string[]): void {
    for (const id of ids) this.count(id, -1);
  }

  /** Whether a statement holding `ids` would conflict with one running. */
  conflicts(ids: readonly string[]): boolean {
    if (this.total === 0) return false;
    for (const id of ids) {
      if (id === TABLE_ID) return true;
      if (id[0] === 'n' && (this.perNamespace.get(id.slice(2)) ?? 0) > 0) return true;
      for (const other of conflictsOf(id)) if (this.held.has(other)) return true;
    }
    return false;
  }

  private count(id: string, by: number): void {
    bump(this.held, id, by);
    this.total += by;
    if (id !== TABLE_ID && id[0] !== 'n') bump(this.perNamespace, namespaceOfKeyId(id), by);
  }
}

function bump<K>(counts: Map<K, number>, key: K, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}

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

  /** Records what the statement waiting at `position` reads or writes (a merged one claims as calls join it). */
  add(position: number, ids: readonly string[]): void {
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
   * Whether a call holding `ids` may join the statement at `position`: not when a statement queued after it
   * writes the call's keys, clears their namespace or evicts across the table, nor, for a write, reads them.
   */
  mayJoin(position: number, ids: readonly string[]): boolean {
    for (const id of ids) {
      for (const other of conflictsOf(id)) if ((this.latest.get(other) ?? 0) > position) return false;
    }
    return true;
  }

  /** The statement at `position` left the queue (it started, or gave up waiting). */
  release(position: number): void {
    const ids = this.byPosition.get(position);
    if (ids === undefined) return;
    // Positions are added in order, so the first one held is the oldest still waiting.
    const oldest = this.byPosition.keys().next().value === position;
    this.byPosition.delete(position);
    for (const id of ids) {
      if (this.latest.get(id) !== position) continue;
      // Statements leave in order but for one that gave up waiting: an older one may hold the same claim.
      const older = oldest ? undefined : this.latestHolder(id);
      if (older === undefined) this.latest.delete(id);
      else this.latest.set(id, older);
    }
  }

  private latestHolder(id: string): number | undefined {
    let found: number | undefined;
    for (const [position, ids] of this.byPosition) if (ids.includes(id)) found = position;
    return found;
  }

  /** How many claims are held (for tests). */
  get size(): number {
    return this.latest.size;
  }
}
