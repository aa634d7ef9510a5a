/** Injection token of the PostgresCache behind the module's `CACHE_MANAGER`. */
export const POSTGRES_CACHE = 'POSTGRES_CACHE';

/** Injection token of the options the module's cache is built from. */
export const POSTGRES_CACHE_OPTIONS = 'POSTGRES_CACHE_OPTIONS';
