export { InjectPostgresCache } from './inject-postgres-cache.js';
export {
  PostgresCacheModule,
  type PostgresCacheModuleAsyncOptions,
  type PostgresCacheModuleOptions,
  type PostgresCacheOptionsFactory,
} from './postgres-cache.module.js';
export { POSTGRES_CACHE, POSTGRES_CACHE_OPTIONS } from './tokens.js';
