export {
  type CachedFunction,
  type CachedInvalidation,
  type CachedOptions,
  type CachedStats,
  cached,
} from './cached.js';
export type { L1Options } from './l1.js';
export { NullCache } from './null-cache.js';
export type { PostgresCacheOptions } from './options.js';
export { type InvalidationReason, PostgresCache, type PostgresCacheEvents } from './postgres-cache.js';
export type { CacheStats } from './stats.js';
export {
  type FlushAction,
  type InvalidationRule,
  type InvalidationTarget,
  type RowMapper,
  TableInvalidation,
  type TableInvalidationEvents,
  type TableInvalidationOptions,
  type TableInvalidationStats,
} from './table-invalidation.js';
export { type InvalidateOnTableChangeOptions, invalidateOnTableChange } from './table-invalidation-api.js';
export type { Eviction, FlushReason } from './table-invalidation-evictor.js';
export { CacheTags, type TaggedSetOptions } from './table-invalidation-tags.js';
export { tableWatcherFor } from './table-invalidation-watcher.js';
export type { Loader } from './wrap/cluster-wrap.js';
export type {
  LockMode,
  LockTimeoutAction,
  RawWrapResult,
  ValueDependent,
  WrapDefaults,
  WrapOptions,
} from './wrap/options.js';
export type { KeyvData } from './wrap/serialization.js';
