import type { L1Options } from './l1.js';
import { PostgresCache } from './postgres-cache.js';

/**
 * A PostgresCache bound to one namespace, sharing the parent's pool and LISTEN connection: what
 * `cached()` keeps a function's results in, so that dropping all of them is one `clear()` through the
 * primary key, whatever namespace a Keyv on the parent has set. It has an L1 of its own.
 */
export function namespacedCache(
  parent: PostgresCache,
  namespace: string,
  l1?: L1Options | false,
): PostgresCache {
  const { options, adapter } = parent;
  return new PostgresCache({
    ...options,
    // Its listener connects as this pool does, which is where the parent's listens (one LISTEN connection).
    pool: adapter.pool,
    namespace,
    sweepInterval: 0,
    // cached() reads the stored text itself.
    decodeL1Hits: false,
    ...(l1 === undefined ? {} : { l1 }),
  });
}
