import { addToCount } from '../counts.js';

/**
 * What a statement reads or writes: some keys of a namespace; all of a namespace (no keys: a clear when it
 * writes, a page of `iterator()` when it reads); or rows of any namespace (no namespace: a tag eviction,
 * whose keys are only known once it has run).
 */
export interface Claim {
  namespace?: string | undefined;
  keys?: readonly string[] | undefined;
  writes: boolean;
}

// Ids: a kind, NUL, the namespace, and for keys NUL and the key. Keys and namespaces hold no NUL, so ids
// cannot collide. Kinds: r/w a key read/written, n a namespace cleared, m a namespace read, t the table.
const keyId = (writes: boolean, namespace: string, key: string) =>
  `${writes ? 'w' : 'r'}\u0000${namespace}\u0000${key}`;
const namespaceId = (namespace: string) => `n\u0000${namespace}`;
const namespaceReadId = (namespace: string) => `m\u0000${namespace}`;
const TABLE_ID = 't';

/** A claim as ids: one per key read or written, one for a whole namespace, or one for the whole table. */
export function claimIds({ namespace, keys, writes }: Claim): string[] {
  if (namespace === undefined) return writes ? [TABLE_ID] : [];
  if (keys === undefined) return [writes ? namespaceId(namespace) : namespaceReadId(namespace)];
  return keys.map((key) => keyId(writes, namespace, key));
}

/** The namespace of an id other than the table's. */
const namespaceOf = (id: string) => {
  const end = id.indexOf('\u0000', 2);
  return end === -1 ? id.slice(2) : id.slice(2, end);
};

/**
 * The ids that may not run beside (nor be overtaken by) one holding `id`, as far as single ids tell; what
 * conflicts with a whole namespace's keys is counted per namespace (see `Claims.conflicts`).
 */
function conflictsOf(id: string): string[] {
  if (id === TABLE_ID) return [];
  const kind = id[0];
  const namespace = namespaceOf(id);
  if (kind === 'n' || kind === 'm') return [namespaceId(namespace), TABLE_ID];
  const rest = id.slice(1);
  const ids = [`w${rest}`, namespaceId(namespace), TABLE_ID];
  if (kind === 'w') ids.push(`r${rest}`, namespaceReadId(namespace));
  return ids;
}

/**
 * What the statements waiting for a connection read and write, by their place in the queue, so that a call
 * merged into an earlier-queued statement never overtakes a later-queued one on its key. A claim lasts until
 * its statement leaves the queue, so what is held stays bounded by what waits.
 */
export class QueueClaims {
  /** Per claim: the latest queue position that holds it, and how many positions do. */
  private readonly latest = new Map<string, number>();
  private readonly holders = new Map<string, number>();
  /** Per queue position still waiting: the claims it made. */
  private readonly byPosition = new Map<number, Set<string>>();

  /** Records what the statement waiting at `position` reads or writes (a merged one claims as calls join it). */
  add(position: number, ids: readonly string[]): void {
    let held = this.byPosition.get(position);
    if (held === undefined) {
      held = new Set();
      this.byPosition.set(position, held);
    }
    for (const id of ids) {
      if (!held.has(id)) {
        addToCount(this.holders, id, 1);
        held.add(id);
      }
      // A call joining an older statement must not hide a newer one's claim.
      if ((this.latest.get(id) ?? 0) < position) this.latest.set(id, position);
    }
  }

  /**
   * Whether a call holding `ids` may join the statement at `position`: not when a statement queued after it
   * writes the call's keys, clears or reads their whole namespace, or evicts across the table, nor, for a
   * write, reads them.
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
    this.byPosition.delete(position);
    this.forget(position, ids);
  }

  /** The statement at `position` now claims only `ids` (calls merged into it gave up waiting). */
  replace(position: number, ids: readonly string[]): void {
    this.release(position);
    if (ids.length > 0) this.add(position, ids);
  }

  private forget(position: number, ids: Iterable<string>): void {
    for (const id of ids) {
      addToCount(this.holders, id, -1);
      if (this.latest.get(id) !== position) continue;
      // Statements leave in order but for one that gave up waiting: an older one may hold the same claim.
      if (this.holders.has(id)) this.latest.set(id, this.latestHolder(id));
      else this.latest.delete(id);
    }
  }

  private latestHolder(id: string): number {
    let found = 0;
    for (const [position, ids] of this.byPosition) if (position > found && ids.has(id)) found = position;
    return found;
  }

  /** How many claims are held (for tests). */
  get size(): number {
    return this.latest.size;
  }
}
