import { EventEmitter } from 'node:events';
import { type Cache, createCache, type Events } from 'cache-manager';
import Keyv from 'keyv';
import { InvalidOptionError, textOf } from '../errors.js';
import { keyvStoredKey } from './keyv-key.js';
import type { PostgresCacheOptions } from './options.js';
import { PostgresCache } from './postgres-cache.js';
import type { ValueDependent, WrapOptions } from './wrap/options.js';
import { encodeEntry, type KeyvEntry } from './wrap/serialization.js';

export interface PostgresCacheManagerOptions extends PostgresCacheOptions {
  /** Default time to live of `set`, `mset` and `wrap`, in ms (cache-manager's `ttl`). Default: none. */
  ttl?: number;
  /** Default `refreshThreshold` of `wrap`, in ms (cache-manager's `refreshThreshold`). */
  refreshThreshold?: number;
  /** cache-manager's `cacheId`. */
  cacheId?: string;
}

/** A cache-manager `Cache` on one PostgresCache, with its `wrap()` taking this library's options too. */
export type PostgresCacheManager = Omit<Cache, 'wrap'> & {
  wrap: PostgresCache['wrap'];
  /** The PostgresCache underneath, closed by `disconnect()`. */
  readonly postgres: PostgresCache;
};

/**
 * A cache-manager 7 `Cache` over one PostgresCache, whose `wrap()` is the cluster-wide one: the same call
 * shapes as cache-manager's (`ttl` and `refreshThreshold` as numbers or functions of the value, `raw`),
 * plus `lockTimeout`, `onLockTimeout`, `lockMode` and `signal`. Everything else is cache-manager's own.
 * Its background refreshes are reported as `refresh` events, as cache-manager's are; a value it loads
 * emits no `set` event. `mdel()` deletes its keys in one statement. `disconnect()` closes the PostgresCache.
 * `decodeL1Hits` is on unless set: this factory's own Keyv is one it suits.
 *
 * A write, delete or clear the cache refuses or cannot make rejects, as over cache-manager's own stores; a
 * read that fails resolves `undefined`, and cache-manager reports the error on its `get` event.
 */
export function createPostgresCacheManager(options: PostgresCacheManagerOptions = {}): PostgresCacheManager {
  const { ttl, refreshThreshold, cacheId, ...cacheOptions } = options;
  assertDefaultMs(ttl, 'ttl');
  assertDefaultMs(refreshThreshold, 'refreshThreshold');
  // The Keyv below has Keyv's default serializer and no compression: L1 hits can reach it decoded.
  const postgres = new PostgresCache({ decodeL1Hits: true, ...cacheOptions });
  // Without throwOnErrors, Keyv 5.6 resolves a failed set as if it had been made (cache-manager cannot tell).
  // The serializer is Keyv's own, text for text, but refuses a value JSON cannot hold with an
  // InvalidValueError (Keyv's throws a bare TypeError or RangeError, or drops a function).
  const keyv = new Keyv({
    store: postgres,
    namespace: cacheOptions.namespace ?? 'keyv',
    throwOnErrors: true,
    serialize: (data) => encodeEntry(data as KeyvEntry),
  });
  const manager = createCache({ stores: [keyv], ttl, refreshThreshold, cacheId });
  // cache-manager cannot be told of refreshes it did not run, nor of deletions made by the mdel below:
  // their events get an emitter of their own.
  const ownEvents = new EventEmitter();
  // 'mdel' is one though cache-manager's Events type leaves it out.
  const ours = (event: string) => event === 'refresh' || event === 'mdel';
  postgres.on('refresh', (event) => ownEvents.emit('refresh', event));
  // cache-manager's own, kept before they are replaced below (calling the replacements would recurse).
  const managerOn = manager.on.bind(manager);
  const managerOff = manager.off.bind(manager);
  const on = <E extends keyof Events>(event: E, listener: Events[E]) =>
    ours(event) ? ownEvents.on(event, listener) : managerOn(event, listener);
  const off = <E extends keyof Events>(event: E, listener: Events[E]) =>
    ours(event) ? ownEvents.off(event, listener) : managerOff(event, listener);

  // One statement for all the keys, where cache-manager's own mdel makes one call per key (merged by the
  // adapter only as far as they wait for a connection together). Each key is prefixed as Keyv's delete()
  // prefixes it (not twice), which is what that mdel called.
  async function mdel(keys: string[]): Promise<boolean> {
    try {
      await postgres.deleteMany(keys.map((key) => keyvStoredKey(keyv.namespace ?? '', key)));
    } catch (error) {
      ownEvents.emit('mdel', { keys, error });
      throw error;
    }
    ownEvents.emit('mdel', { keys });
    return true;
  }

  function wrap<T>(
    key: string,
    loader: () => T | Promise<T>,
    ttlOrOptions?: ValueDependent<T> | WrapOptions<T>,
    refreshThresholdOrNothing?: ValueDependent<T>,
  ) {
    const given: WrapOptions<T> =
      typeof ttlOrOptions === 'object' && ttlOrOptions !== null
        ? ttlOrOptions
        : { ttl: ttlOrOptions, refreshThreshold: refreshThresholdOrNothing };
    return postgres.wrap(key, loader, {
      ...given,
      ttl: orDefault(given.ttl, ttl),
      refreshThreshold: orDefault(given.refreshThreshold, refreshThreshold),
    });
  }

  return Object.assign(manager, { wrap: wrap as PostgresCache['wrap'], mdel, on, off, postgres });
}

function assertDefaultMs(value: unknown, name: 'ttl' | 'refreshThreshold'): void {
  // Infinity is no expiry, as a ttl given per call.
  if (value === undefined || (typeof value === 'number' && value >= 0)) return;
  throw new InvalidOptionError(`${name} must be a non-negative number of ms; got ${textOf(value)}`);
}

/** As cache-manager resolves them: a function of the value that returns undefined falls back to the default too. */
function orDefault<T>(
  setting: ValueDependent<T> | undefined,
  fallback: number | undefined,
): ValueDependent<T> | undefined {
  if (typeof setting !== 'function' || fallback === undefined) return setting ?? fallback;
  return (value: T) => setting(value) ?? fallback;
}
