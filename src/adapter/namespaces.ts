/**
 * Keyv 5 tells a store its namespace by setting `store.namespace`, and prefixes keys with it. When one
 * store serves several Keyv instances, `store.namespace` is whichever was set last; the key's prefix
 * still names its namespace. This remembers every namespace set and reads it back from the key.
 */
export class NamespaceTracker {
  private current: string | undefined;
  /** Every namespace set so far with the prefix it gives keys, longest first: 'a:b' wins over 'a' for 'a:b:c'. */
  private readonly known: Array<{ namespace: string; prefix: string }> = [];

  get namespace(): string | undefined {
    return this.current;
  }

  set namespace(value: string | undefined) {
    this.current = value;
    if (value && !this.known.some((known) => known.namespace === value)) {
      this.known.push({ namespace: value, prefix: `${value}:` });
      this.known.sort((x, y) => y.namespace.length - x.namespace.length);
    }
  }

  /**
   * The namespace a key belongs to: the longest known namespace whose prefix it carries, whatever was set
   * last (a Keyv without a namespace sets none, and must not capture a namespaced Keyv's keys), else the
   * current one.
   */
  of(key: string): string {
    const current = this.current ?? '';
    // This runs on every call, L1 hits included. With one Keyv on the store, every answer would be its namespace.
    if (this.known.length === 1 && this.known[0]?.namespace === current) return current;
    // A non-string key is refused later, with a typed error, by the method that got it.
    if (typeof key === 'string') {
      for (const { namespace, prefix } of this.known) if (key.startsWith(prefix)) return namespace;
    }
    return current;
  }
}
