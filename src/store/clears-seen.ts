/** Clears held while their other half (event or answer) is awaited, at most: most clears are not our own. */
const MAX_AWAITED = 1000;
/** Characters of a namespace whose clear event surely fits a NOTIFY payload (8 000 bytes, JSON-escaped). */
const MAX_CLEAR_EVENT_NAMESPACE = 1300;

/**
 * Tells which half of a clear comes first: its change event or, for this cache's own, its answer. Both evict
 * what the clear hides; the first is announced. A clear is known by its namespace and version, and matched
 * only exactly.
 */
export class ClearsSeen {
  private readonly answered = new Set<string>();
  private readonly notified = new Set<string>();

  /**
   * Our own clear has its answer: true unless its event came first.
   * @param eventExpected false without a listener: then nothing is held for an event that never comes.
   */
  answer(namespace: string, version: number, eventExpected: boolean): boolean {
    const clear = `${namespace}\u0000${version}`;
    if (this.notified.delete(clear)) return false;
    // A namespace too long for a clear event is announced as a flush, which forgets everything held anyway.
    if (eventExpected && namespace.length <= MAX_CLEAR_EVENT_NAMESPACE) remember(this.answered, clear);
    return true;
  }

  /** A clear's event came: true unless it is our own and its answer came first. */
  notify(namespace: string, version: number): boolean {
    const clear = `${namespace}\u0000${version}`;
    if (this.answered.delete(clear)) return false;
    remember(this.notified, clear);
    return true;
  }

  /** Events may have been lost (the listener was down): a half awaited may never come. */
  forget(): void {
    this.answered.clear();
    this.notified.clear();
  }
}

function remember(clears: Set<string>, clear: string) {
  clears.add(clear);
  if (clears.size > MAX_AWAITED) {
    const oldest = clears.values().next().value;
    if (oldest !== undefined) clears.delete(oldest);
  }
}
