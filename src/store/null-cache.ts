import { EventEmitter } from 'node:events';
import { assertStorableKey } from '../adapter/validation.js';
import { unlessAborted } from './wrap/abort.js';
import type { Loader } from './wrap/cluster-wrap.js';
import {
  assertWrapCall,
  type RawWrapResult,
  resolveWrapOptions,
  type ValueDependent,
  valueDependent,
  type WrapOptions,
} from './wrap/options.js';

/**
 * A store that keeps nothing: every get misses, so every `wrap()` runs its loader. The same Keyv
 * store interface as PostgresCache, for local development and tests.
 */
export class NullCache extends EventEmitter {
  readonly opts = { dialect: 'null', url: 'null' };
  namespace?: string | undefined;

  async get(_key: string): Promise<undefined> {
    return undefined;
  }

  async getMany(keys: string[]): Promise<undefined[]> {
    return keys.map(() => undefined);
  }

  async set(_key: string, _value: unknown, _ttl?: number): Promise<boolean> {
    return true;
  }

  setMany(entries: Array<{ key: string }>): Promise<boolean[]>;
  /** What Keyv's store type declares; Keyv's setMany() returns the booleans all the same. */
  setMany(entries: Array<{ key: string }>): Promise<void>;
  // biome-ignore lint/suspicious/noConfusingVoidType: compatible with both signatures above
  async setMany(entries: Array<{ key: string }>): Promise<boolean[] | void> {
    return entries.map(() => true);
  }

  async delete(_key: string): Promise<boolean> {
    return false;
  }

  /** Nothing was there to delete: false, except for no keys (true, as in PostgresCache). */
  async deleteMany(keys: string[]): Promise<boolean> {
    return keys.length === 0;
  }

  async clear(): Promise<void> {}

  async has(_key: string): Promise<boolean> {
    return false;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return keys.map(() => false);
  }

  async *iterator(_namespace?: string): AsyncGenerator<[string, string], void> {}

  async disconnect(): Promise<void> {}

  /** Runs the loader, every time: nothing is cached, nothing is shared between callers. */
  wrap<T>(
    key: string,
    loader: Loader<T>,
    ttl?: ValueDependent<T>,
    refreshThreshold?: ValueDependent<T>,
  ): Promise<T>;
  wrap<T>(key: string, loader: Loader<T>, options: WrapOptions<T> & { raw: true }): Promise<RawWrapResult<T>>;
  wrap<T>(key: string, loader: Loader<T>, options: WrapOptions<T>): Promise<T>;
  async wrap<T>(
    key: string,
    loader: Loader<T>,
    ttlOrOptions?: ValueDependent<T> | WrapOptions<T>,
    refreshThreshold?: ValueDependent<T>,
  ): Promise<T | RawWrapResult<T>> {
    assertWrapCall(key, loader, ttlOrOptions, refreshThreshold);
    assertStorableKey(key);
    const options = resolveWrapOptions(ttlOrOptions, refreshThreshold, undefined);
    // A caller that has already given up starts nothing (as PostgresCache.wrap does).
    if (options.signal?.aborted) throw options.signal.reason;
    const value = await unlessAborted(Promise.resolve().then(loader), options.signal);
    if (!options.raw) return value;
    const ttl = value === undefined ? undefined : valueDependent(options.ttl, value, 'ttl');
    return { value, expires: ttl ? Date.now() + ttl : undefined };
  }

  getOrSet<T>(
    key: string,
    loader: Loader<T>,
    options: WrapOptions<T> & { raw: true },
  ): Promise<RawWrapResult<T>>;
  getOrSet<T>(key: string, loader: Loader<T>, options?: WrapOptions<T>): Promise<T>;
  getOrSet<T>(key: string, loader: Loader<T>, options: WrapOptions<T> = {}): Promise<T | RawWrapResult<T>> {
    return this.wrap(key, loader, options);
  }
}
