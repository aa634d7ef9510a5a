import type { PostgresAdapterOptions } from '../adapter/options.js';
import { InvalidOptionError } from '../errors.js';
import type { BackoffOptions } from '../notify/backoff.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import type { L1Options } from './l1.js';
import type { WrapDefaults } from './wrap/options.js';

export interface PostgresCacheOptions extends PostgresAdapterOptions {
  /**
   * The in-process tier. `false` turns it off. With `notifications: false` it is off unless `l1.ttl`
   * is set, and then entries may be that stale.
   */
  l1?: L1Options | false;
  /** LISTEN for changes so every process's L1 stays coherent. Costs one connection per process. Default true. */
  notifications?: boolean;
  /** A direct URL for the LISTEN connection when `connectionString` goes through PgBouncer in transaction mode. */
  listenerConnectionString?: string;
  /**
   * Reconnect backoff of the LISTEN connection. This and the heartbeat options belong to the connection,
   * which every cache and table watcher of the process shares per database: the first to open it sets them.
   */
  reconnect?: BackoffOptions;
  /** How often the LISTEN connection proves it is alive, in ms. Default 2000. */
  heartbeatInterval?: number;
  /** How long that proof may go unanswered before the connection counts as dead (half-open), in ms. Default 2000. */
  heartbeatTimeout?: number;
  /**
   * How often the cache reads the catalog again to confirm that the table's triggers still fire and notify
   * its channel, in ms; 0 for only when LISTEN (re)connects or a re-point notice arrives. A trigger disabled
   * while caches run is then noticed within this time: L1 is emptied and bypassed until it fires again.
   * Table invalidations on the cache (`cached()`, `invalidateOnTableChange()`) check their tables' watches
   * as often (with 0, once, at the start). Default 30000.
   */
  triggerCheckInterval?: number;
  /** Namespace for calls made on the cache directly (not through Keyv, which sets its own). Default: the empty namespace. */
  namespace?: string;
  /**
   * Hand Keyv the entries L1 holds already decoded, so that Keyv skips its own parsing of the stored text:
   * an L1 hit through Keyv costs about half as much. Each call gets a new object, exactly what Keyv's
   * default deserializer would have made. Only for Keyv's default `serialize`/`deserialize` and no
   * `compression`: Keyv does not pass an object through those, so with them reads would go wrong. With it,
   * `get()` resolves to that object (`{ value, expires }`) on an L1 hit. Default false.
   */
  decodeL1Hits?: boolean;
  /** Defaults of every `wrap()`/`getOrSet()` call: lock timeout and what follows it, lock mode (PgBouncer). */
  wrap?: WrapDefaults;
}

export function triggerCheckIntervalOf(value: number | undefined): number {
  return checkIntervalOf(value, 'triggerCheckInterval');
}

/** A period of catalog checks in ms, 30 000 by default; 0 for none after the first. */
export function checkIntervalOf(value: number | undefined, name: string): number {
  const interval = value ?? 30_000;
  if (!(Number.isInteger(interval) && interval >= 0 && interval <= MAX_TIMER_MS)) {
    throw new InvalidOptionError(
      `${name} must be 0 or a whole number of ms up to ${MAX_TIMER_MS}; got ${String(value)}`,
    );
  }
  return interval;
}
