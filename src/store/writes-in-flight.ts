import { addToCount } from '../counts.js';

/** What an own write touches: some entries, a namespace (a clear), or any entry (its rows known only once it ran). */
export type WriteMarks = { ids: readonly string[] } | { namespace: string } | { everything: true };

/**
 * This cache's own writes, deletes and clears while they are in flight. L1 is not read for what they touch
 * meanwhile: a read made after a write must see it, and what L1 holds is the state before the write. Such a
 * read goes to the adapter, which runs it after the write (calls on one key keep their order there).
 */
export class WritesInFlight {
  private readonly entries = new Map<string, number>();
  private readonly namespaces = new Map<string, number>();
  /** Writes whose rows are known only once they have run (an eviction by tag): they touch every entry. */
  private everywhere = 0;

  /** @param onSettleError where an error of bringing L1 up to date goes: the write itself was made. */
  constructor(private readonly onSettleError: (error: unknown) => void) {}

  /** Whether an own write of the entry, or an own clear of its namespace, is in flight. */
  covers(namespace: string, id: string): boolean {
    if (this.everywhere > 0) return true;
    if (this.entries.size === 0 && this.namespaces.size === 0) return false;
    return this.entries.has(id) || this.namespaces.has(namespace);
  }

  /**
   * Runs a write marked in flight until it has answered and `settle` has brought L1 up to date with the
   * answer. `settle` runs only if the write succeeded; an error of its own is reported, not the write's.
   */
  async around<T>(marks: WriteMarks, write: () => Promise<T>, settle: (answer: T) => void): Promise<T> {
    this.mark(marks, 1);
    try {
      const answer = await write();
      try {
        settle(answer);
      } catch (error) {
        this.onSettleError(error);
      }
      return answer;
    } finally {
      this.mark(marks, -1);
    }
  }

  private mark(marks: WriteMarks, by: number): void {
    if ('ids' in marks) for (const id of marks.ids) addToCount(this.entries, id, by);
    else if ('namespace' in marks) addToCount(this.namespaces, marks.namespace, by);
    else this.everywhere += by;
  }
}
