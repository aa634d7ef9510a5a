import type pg from 'pg';
import type { PostgresAdapter } from '../adapter/postgres-adapter.js';

/**
 * Where a cache LISTENs: `listenerConnectionString` if given, else where its pool connects, so that the
 * listener hears the database the cache writes to. A bare URL stays a URL; any other setup gives the pool's
 * own settings (a supplied pool's, or the URL with `poolConfig`'s TLS and credentials).
 */
export function listenerConnection(
  adapter: PostgresAdapter,
  listenerConnectionString: string | undefined,
): string | pg.ClientConfig {
  if (listenerConnectionString) return listenerConnectionString;
  const { connectionString, pool, poolConfig } = adapter.options;
  if (connectionString && !pool && Object.keys(poolConfig).length === 0) return connectionString;
  return (adapter.pool as unknown as { options: pg.ClientConfig }).options;
}
