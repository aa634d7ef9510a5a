/** Counters since the cache was created. */
export interface CacheStats {
  l1: { hits: number; misses: number; size: number; bytes: number };
  postgres: { hits: number; misses: number };
  /** L1 entries dropped because another write (event or own delete/clear) made them stale. */
  evictions: { event: number; clear: number; flush: number };
  /** Change events received, and those that were not ours or not well-formed. */
  events: { received: number; ignored: number };
  /** Values read or written that were kept out of L1 because a newer change had been seen. */
  refusedFills: number;
  listener: { connected: boolean; reconnects: number; backendPid: number | undefined };
}

export function emptyStats(): Omit<CacheStats, 'listener'> {
  return {
    l1: { hits: 0, misses: 0, size: 0, bytes: 0 },
    postgres: { hits: 0, misses: 0 },
    evictions: { event: 0, clear: 0, flush: 0 },
    events: { received: 0, ignored: 0 },
    refusedFills: 0,
  };
}
