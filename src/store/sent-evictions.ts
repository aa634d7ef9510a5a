import type pg from 'pg';

/**
 * A delete this process has begun: of keys in one namespace, of a whole namespace (a clear), or of every entry
 * that carries one of the tags.
 */
export type SentEviction =
  | { namespace: string; keys: readonly string[] }
  | { namespace: string; everything: true }
  | { tags: readonly string[] };

/**
 * This process's deletes of a cache table's entries, as they are sent, for the loads in flight here that must
 * then not store what they loaded: a delete that finds no row (a table rule evicting a key or a tag before it
 * is stored) sends no change event, and leaves no trace in the table. One per pool and table, since `cached()`
 * keeps its results in a cache of its own on its parent's pool.
 */
export class SentEvictions {
  private readonly listeners = new Set<(eviction: SentEviction) => void>();

  /** Hears every eviction sent until the returned function is called. */
  listen(listener: (eviction: SentEviction) => void): () => void {
    const own = (eviction: SentEviction) => listener(eviction);
    this.listeners.add(own);
    return () => {
      this.listeners.delete(own);
    };
  }

  sent(eviction: SentEviction): void {
    for (const listener of [...this.listeners]) listener(eviction);
  }
}

const byPool = new WeakMap<pg.Pool, Map<string, SentEvictions>>();

/** The evictions of the cache table `table` (its identity) sent through caches on `pool`. */
export function sentEvictionsOf(pool: pg.Pool, table: string): SentEvictions {
  let tables = byPool.get(pool);
  if (!tables) {
    tables = new Map();
    byPool.set(pool, tables);
  }
  let evictions = tables.get(table);
  if (!evictions) {
    evictions = new SentEvictions();
    tables.set(table, evictions);
  }
  return evictions;
}
