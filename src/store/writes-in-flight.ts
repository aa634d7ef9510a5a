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

  /** Whether an own write of the entry, or an own clear of its namespace, is in flight. */
  covers(namespace: string, id: string): boolean {
    if (this.everywhere > 0) return true;
    if (this.entries.size === 0 && this.namespaces.size === 0) return false;
    return this.entries.has(id) || this.namespaces.has(namespace);
  }

  /**
   * Runs a write of the entries `ids`, a clear of `namespace`, or (with neither) a write that may touch any
   * entry, marked in flight until it has answered and `settle` has brought L1 up to date with the answer.
   */
  async around<T>(
    marks: { ids?: readonly string[]; namespace?: string },
    write: () => Promise<T>,
    settle: (answer: T) => void,
  ): Promise<T> {
    const { ids = [], namespace } = marks;
    const anywhere = ids.length === 0 && namespace === undefined;
    for (const id of ids) bump(this.entries, id, 1);
    if (namespace !== undefined) bump(this.namespaces, namespace, 1);
    if (anywhere) this.everywhere++;
    try {
      const answer = await write();
      settle(answer);
      return answer;
    } finally {
      for (const id of ids) bump(this.entries, id, -1);
      if (namespace !== undefined) bump(this.namespaces, namespace, -1);
      if (anywhere) this.everywhere--;
    }
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}
