import { afterAll, beforeAll } from 'vitest';
import { PostgresCache, type PostgresCacheOptions } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from './database.js';

/**
 * A test file's own schema with the cache tables, an admin pool on it, and `newCache()`: every cache it
 * makes is disconnected, and the schema dropped, after the file.
 */
export function cacheFixture(label: string, poolSize?: number) {
  const schema = uniqueSchema(label);
  const pool = adminPool(poolSize);
  const opened: PostgresCache[] = [];
  beforeAll(() => PostgresCache.initDb({ connectionString: databaseUrl(), schema }));
  afterAll(async () => {
    await Promise.all(opened.map((cache) => cache.disconnect()));
    await dropSchema(schema);
    await pool.end();
  });
  const newCache = (options: PostgresCacheOptions = {}) => {
    const cache = new PostgresCache({
      connectionString: databaseUrl(),
      schema,
      sweepInterval: 0,
      ...options,
    });
    opened.push(cache);
    return cache;
  };
  return { schema, pool, newCache };
}
