import { InvalidOptionError } from '../errors.js';

/**
 * Keyv 5 tells a store its namespace by setting `store.namespace`, and prefixes keys with it. When one
 * store serves several Keyv instances, `store.namespace` is whichever was set last; the key's prefix
 * still names its namespace. This remembers every namespace set and reads it back from the key.
 */
export class NamespaceTracker {
  private current: string | undefined;
  /** Every value set, `undefined` (a Keyv without a namespace) included. */
  private readonly assigned = new Set<string | undefined>();
  private firstSet: string | undefined;
  /** Every namespace set so far with the prefix it gives keys; no prefix starts another (see the setter). */
  private readonly known: Array<{ namespace: string; prefix: string }> = [];

  get namespace(): string | undefined {
    return this.current;
  }

  /**
   * Refuses a namespace whose prefix starts another's ('a' and 'a:b'): Keyv would store `a:b:c` for key `b:c`
   * of the one and key `c` of the other, and no store could tell which a call meant.
   */
  set namespace(value: string | undefined) {
    const prefix = `${value}:`;
    const isNew = value ? !this.known.some((known) => known.namespace === value) : false;
    const overlapping = isNew
      ? this.known.find((known) => known.prefix.startsWith(prefix) || prefix.startsWith(known.prefix))
      : undefined;
    if (overlapping) {
      throw new InvalidOptionError(
        `namespaces ${JSON.stringify(overlapping.namespace)} and ${JSON.stringify(value)} cannot share a ` +
          `store: Keyv's keys of the one look like keys of the other; give each a store of its own`,
      );
    }
    this.current = value;
    if (this.assigned.size === 0) this.firstSet = value;
    this.assigned.add(value);
    if (value && isNew) this.known.push({ namespace: value, prefix });
  }

  /**
   * The namespace a key belongs to. With one namespace ever set, that one. Otherwise the known namespace
   * whose prefix the key carries, whatever was set last (a Keyv without a namespace sets none, and
   * must not capture a namespaced Keyv's keys); a key without one belongs to the Keyv without a namespace if
   * there is one (its keys carry no prefix), else to the namespace set last.
   * @param unnamed where the calls of a Keyv without a namespace (and of no Keyv) go.
   */
  of(key: string, unnamed = ''): string {
    // This runs on every call, L1 hits included.
    if (this.assigned.size === 1) return this.current ?? unnamed;
    // A non-string key is refused later, with a typed error, by the method that got it.
    if (typeof key === 'string') {
      for (const { namespace, prefix } of this.known) if (key.startsWith(prefix)) return namespace;
    }
    return this.assigned.has(undefined) ? unnamed : (this.current ?? unnamed);
  }

  /**
   * A batch split by the namespace each item's key belongs to, as `of` places it alone: a Keyv without a
   * namespace may send keys that carry a namespaced Keyv's prefix. One group, the batch itself, while the store
   * is not shared.
   */
  groups<Item>(
    items: Item[],
    keyOf: (item: Item) => string | undefined,
    unnamed = '',
  ): Array<NamespaceGroup<Item>> {
    const [first] = items;
    if (!this.shared || items.length < 2) {
      const key = first === undefined ? '' : (keyOf(first) ?? '');
      return [{ namespace: this.of(key, unnamed), items, positions: undefined }];
    }
    const groups = new Map<string, { namespace: string; items: Item[]; positions: number[] }>();
    items.forEach((item, position) => {
      const namespace = this.of(keyOf(item) ?? '', unnamed);
      let group = groups.get(namespace);
      if (!group) {
        group = { namespace, items: [], positions: [] };
        groups.set(namespace, group);
      }
      group.items.push(item);
      group.positions.push(position);
    });
    return [...groups.values()];
  }

  /** Whether more than one namespace was set: several Keyv instances share the store. */
  get shared(): boolean {
    return this.assigned.size > 1;
  }

  /** The first namespace set (by the first Keyv on the store): it stays, whoever comes later. */
  get first(): string | undefined {
    return this.firstSet;
  }

  /** Whether any namespace was set: a Keyv without a namespace sets `undefined`, which counts. */
  get anyAssigned(): boolean {
    return this.assigned.size > 0;
  }

  /**
   * What a `clear()` must empty. Keyv's does not say which of the Keyv instances sharing the store calls:
   * clearing only the one set last would leave the caller's entries stale (and empty another's). So a shared
   * store clears every namespace it was given: the others lose entries they can load again.
   * @param unnamed where calls go for a Keyv without a namespace.
   */
  clearTargets(unnamed: string): string[] {
    const targets = this.shared ? [...this.assigned] : [this.current];
    return [...new Set(targets.map((namespace) => namespace ?? unnamed))];
  }
}

/** Part of a batch whose keys belong to one namespace; `positions` in the batch, undefined for all of it. */
export interface NamespaceGroup<Item> {
  namespace: string;
  items: Item[];
  positions: number[] | undefined;
}

/** Runs each group's part of a batch (all at once) and puts the answers back in the batch's order. */
export async function answersInOrder<Item, Answer>(
  groups: Array<NamespaceGroup<Item>>,
  run: (namespace: string, items: Item[]) => Promise<Answer[]>,
): Promise<Answer[]> {
  const [only] = groups;
  if (groups.length === 1 && only) return run(only.namespace, only.items);
  const answers: Answer[] = [];
  await Promise.all(
    groups.map(async ({ namespace, items, positions }) => {
      const part = await run(namespace, items);
      positions?.forEach((position, index) => {
        answers[position] = part[index] as Answer;
      });
    }),
  );
  return answers;
}
