import { addToCount } from '../counts.js';
import type { Claim } from './queue-claims.js';

/**
 * What a namespace's claims hold: the keys of each read (kept as given: a read of many keys costs nothing to
 * add, and only a write looks into them), counts per key written, clears, and whole-namespace reads.
 */
interface Space {
  reads: Array<readonly string[]>;
  writes: Map<string, number>;
  clears: number;
  scans: number;
}

/**
 * A multiset of claims (those of the statements running now, say) and the question whether another conflicts
 * with any of them: two statements conflict when one writes what the other reads or writes (on different
 * connections, two statements sent in order may commit in either order). The relation is symmetric. Reads
 * of a namespace no one writes cost one lookup, however many keys they name.
 */
export class Claims {
  private readonly spaces = new Map<string, Space>();
  /** Claims held; and of them, writes across the table (a tag eviction). */
  private total = 0;
  private tableWrites = 0;

  add(claims: readonly Claim[]): void {
    for (const claim of claims) this.count(claim, 1);
  }

  remove(claims: readonly Claim[]): void {
    for (const claim of claims) this.count(claim, -1);
  }

  conflicts(claims: readonly Claim[]): boolean {
    if (this.total === 0) return false;
    for (const claim of claims) if (this.conflictsWith(claim)) return true;
    return false;
  }

  private conflictsWith({ namespace, keys, writes }: Claim): boolean {
    // No namespace and no write: a statement that claims nothing.
    if (namespace === undefined) return writes;
    if (this.tableWrites > 0) return true;
    const space = this.spaces.get(namespace);
    if (space === undefined) return false;
    if (space.clears > 0) return true;
    if (keys === undefined) {
      return writes ? space.reads.length + space.writes.size + space.scans > 0 : space.writes.size > 0;
    }
    if (writes) {
      if (space.scans > 0) return true;
      if (keys.some((key) => space.writes.has(key))) return true;
      return space.reads.some((read) => keys.some((key) => read.includes(key)));
    }
    return space.writes.size > 0 && keys.some((key) => space.writes.has(key));
  }

  private count({ namespace, keys, writes }: Claim, by: number): void {
    if (namespace === undefined) {
      if (!writes) return;
      this.tableWrites += by;
      this.total += by;
      return;
    }
    this.total += by;
    let space = this.spaces.get(namespace);
    if (space === undefined) {
      space = { reads: [], writes: new Map(), clears: 0, scans: 0 };
      this.spaces.set(namespace, space);
    }
    if (keys === undefined) {
      if (writes) space.clears += by;
      else space.scans += by;
    } else if (writes) {
      for (const key of keys) addToCount(space.writes, key, by);
    } else if (by > 0) {
      space.reads.push(keys);
    } else {
      // Removed as added: the same claim, so the same array.
      const index = space.reads.indexOf(keys);
      if (index !== -1) space.reads.splice(index, 1);
    }
    if (space.clears === 0 && space.scans === 0 && space.reads.length === 0 && space.writes.size === 0) {
      this.spaces.delete(namespace);
    }
  }
}
