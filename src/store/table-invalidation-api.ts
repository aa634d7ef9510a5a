import { InvalidOptionError } from '../errors.js';
import type { TableWatcher } from '../notify/table-watch/table-watcher.js';
import { PostgresCache } from './postgres-cache.js';
import {
  type FlushAction,
  type InvalidationRule,
  type InvalidationTarget,
  TableInvalidation,
} from './table-invalidation.js';
import { CacheTags } from './table-invalidation-tags.js';
import { catalogOf, tableWatcherFor } from './table-invalidation-watcher.js';

export interface InvalidateOnTableChangeOptions extends InvalidationRule {
  /** Default: a watcher on the cache's listener connection and default channel (PostgresCache, or a Keyv over one). */
  watcher?: TableWatcher;
  /** How to drop everything that depends on the table (truncate, oversize keys, reconnect). Default `clear`. */
  onFlush?: FlushAction;
}

/**
 * Deletes cache entries when rows of a table change, in every process that runs the same rule:
 *
 *   invalidateOnTableChange(cache, { table: 'users', keys: (row) => [`user:${row.id}`] });
 *
 * `keys` are the keys as the target understands them: for a PostgresCache, the keys given to its own
 * calls and the keys given to its `wrap()` (both are deleted); for a Keyv, its keys (Keyv adds its
 * namespace prefix). `tags` evict through the cache's tag index.
 */
export function invalidateOnTableChange(
  cache: PostgresCache | (InvalidationTarget & { store?: unknown }),
  options: InvalidateOnTableChangeOptions,
): TableInvalidation {
  const { watcher, onFlush, ...rule } = options;
  const postgres =
    cache instanceof PostgresCache ? cache : cache?.store instanceof PostgresCache ? cache.store : undefined;
  if (!watcher && !postgres) {
    throw new InvalidOptionError('give a watcher: the target is neither a PostgresCache nor a Keyv over one');
  }
  if (rule.tags && !postgres) throw new InvalidOptionError('tags need a PostgresCache (or a Keyv over one)');
  const ownWatcher = watcher ? undefined : tableWatcherFor(postgres as PostgresCache);
  try {
    return new TableInvalidation({
      watcher: watcher ?? (ownWatcher as TableWatcher),
      ownsWatcher: !watcher,
      target: cache instanceof PostgresCache ? directAndWrapped(cache) : cache,
      rules: [rule],
      tagIndex: rule.tags && postgres ? new CacheTags(postgres) : undefined,
      onFlush,
      catalog: postgres && catalogOf(postgres),
      watchCheckInterval: postgres?.options.triggerCheckInterval,
    });
  } catch (error) {
    // A rule refused: the watcher opened for it must not hold the LISTEN connection.
    ownWatcher?.close().catch(() => undefined);
    throw error;
  }
}

/** A PostgresCache's entries of a key whether stored by its own calls or by `wrap()`, which prefixes as Keyv does. */
function directAndWrapped(cache: PostgresCache): InvalidationTarget {
  return {
    deleteMany: (keys) => Promise.all([cache.deleteMany(keys), cache.deleteWrapped(keys)]),
    clear: () => Promise.all([cache.clear(), cache.clearWrapped()]),
  };
}
