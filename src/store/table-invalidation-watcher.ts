import { TableWatcher } from '../notify/table-watch/table-watcher.js';
import type { CatalogQuery } from '../notify/table-watch/watch-check.js';
import { listenerConnection } from './listener-connection.js';
import type { PostgresCache } from './postgres-cache.js';

/**
 * A TableWatcher for the tables watched on behalf of this cache: the cache's schema and prefix name
 * the default channel, and it LISTENs on the same connection as the cache (one per process).
 * Close it when done; the connection stays as long as the cache or another watcher uses it.
 */
export function tableWatcherFor(cache: PostgresCache, options: { channel?: string } = {}): TableWatcher {
  const { adapter } = cache;
  return new TableWatcher({
    connection: listenerConnection(adapter, cache.options.listenerConnectionString),
    cacheSchema: adapter.options.schema,
    tablePrefix: adapter.options.tablePrefix,
    channel: options.channel,
    reconnect: cache.options.reconnect,
    heartbeatInterval: cache.options.heartbeatInterval,
  });
}

/** Catalog queries through the cache's adapter: its connection slots and deadline. */
export function catalogOf(cache: PostgresCache): CatalogQuery {
  return (text, values) => cache.adapter.execute(text, values, 'checking table watches');
}
