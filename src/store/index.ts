export type { L1Options } from './l1.js';
export { NullCache } from './null-cache.js';
export type { PostgresCacheOptions } from './options.js';
export { type InvalidationReason, PostgresCache, type PostgresCacheEvents } from './postgres-cache.js';
export type { CacheStats } from './stats.js';
