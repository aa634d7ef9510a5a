/**
 * Keyv 5 tells a store its namespace by setting `store.namespace`, and prefixes keys with it. When one
 * store serves several Keyv instances, `store.namespace` is whichever was set last; the key's prefix
 * still names its namespace. This remembers every namespace set and reads it back from the key.
 */
export class NamespaceTracker {
  private current: string | undefined;
  private readonly known: string[] = [];

  get namespace(): string | undefined {
    return this.current;
  }

  set namespace(value: string | undefined) {
    this.current = value;
    if (value && !this.known.includes(value)) {
      this.known.push(value);
      // Longest first, so 'a:b' wins over 'a' for the key 'a:b:c'.
      this.known.sort((x, y) => y.length - x.length);
    }
  }

  /**
   * The namespace a key belongs to: the longest known namespace whose prefix it carries, whatever was set
   * last (a Keyv without a namespace sets none, and must not capture a namespaced Keyv's keys), else the
   * current one.
   */
  of(key: string): string {
    const current = this.current ?? '';
    // A non-string key is refused later, with a typed error, by the method that got it.
    if (typeof key !== 'string') return current;
    return this.known.find((namespace) => key.startsWith(`${namespace}:`)) ?? current;
  }
}
