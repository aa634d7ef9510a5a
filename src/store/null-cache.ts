import { EventEmitter } from 'node:events';
import {
  assertEntryList,
  assertKeys,
  assertNamespace,
  assertStorableValue,
  normalizeTtl,
} from '../adapter/validation.js';
import { DisconnectedError } from '../errors.js';
import { type CacheStats, emptyStats } from './stats.js';
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
import { encodeEntry } from './wrap/serialization.js';

/**
 * A store that keeps nothing: every get misses, so every `wrap()` runs its loader. The same Keyv
 * store interface as PostgresCache, for local development and tests, and the same refusals: a key,
 * value or ttl PostgresCache would refuse, and any call after `disconnect()`, fail here too, with the
 * same typed errors, so that code tested against it does not first fail in production. It also has the rest of
 * PostgresCache's public calls (`init()`, `coherent`, `stats`, `clearNamespace()`, …), as no-ops or zeros.
 */
export class NullCache extends EventEmitter {
  readonly opts = { dialect: 'null', url: 'null' };
  namespace?: string | undefined;
  private closed = false;

  /** There is nothing to prepare. */
  async init(): Promise<void> {
    this.checkOpen();
  }

  /** Always: it holds nothing that could be stale. */
  get coherent(): boolean {
    return true;
  }

  /** All zero: there is no L1, no database and no listener. */
  get stats(): CacheStats {
    return { ...emptyStats(), listener: { connected: false, reconnects: 0, backendPid: undefined } };
  }

  async get(key: string): Promise<undefined> {
    this.checkKeys([key]);
    return undefined;
  }

  async getMany(keys: string[]): Promise<undefined[]> {
    this.checkKeys(keys);
    return keys.map(() => undefined);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.checkEntries([{ key, value, ttl }]);
    return true;
  }

  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]>;
  /** What Keyv's store type declares; Keyv's setMany() returns the booleans all the same. */
  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void>;
  // biome-ignore lint/suspicious/noConfusingVoidType: compatible with both signatures above
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[] | void> {
    this.checkEntries(entries);
    return entries.map(() => true);
  }

  async delete(key: string): Promise<boolean> {
    this.checkKeys([key]);
    return false;
  }

  /** Nothing was there to delete: false, except for no keys (true, as in PostgresCache). */
  async deleteMany(keys: string[]): Promise<boolean> {
    this.checkKeys(keys);
    return keys.length === 0;
  }

  async clear(): Promise<void> {
    this.checkOpen();
  }

  async clearNamespace(namespace: string): Promise<void> {
    this.checkOpen();
    assertNamespace(namespace);
  }

  /** As `deleteMany`, for keys as `wrap()` takes them. */
  async deleteWrapped(keys: string[]): Promise<boolean> {
    return this.deleteMany(keys);
  }

  async clearWrapped(): Promise<void> {
    this.checkOpen();
  }

  async has(key: string): Promise<boolean> {
    this.checkKeys([key]);
    return false;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    this.checkKeys(keys);
    return keys.map(() => false);
  }

  // biome-ignore lint/correctness/useYield: it keeps nothing, so it has nothing to yield
  async *iterator(_namespace?: string): AsyncGenerator<[string, string], void> {
    this.checkOpen();
  }

  async disconnect(): Promise<void> {
    this.closed = true;
  }

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
    this.checkKeys([key]);
    const options = resolveWrapOptions(ttlOrOptions, refreshThreshold, undefined);
    // A caller that has already given up starts nothing (as PostgresCache.wrap does).
    if (options.signal?.aborted) throw options.signal.reason;
    const value = await unlessAborted(Promise.resolve().then(loader), options.signal);
    if (value === undefined) return options.raw ? { value, expires: undefined } : value;
    // The ttl as PostgresCache reads it: Infinity (or past 2^53) is no expiry, a negative one already expired.
    const ttl = normalizeTtl(valueDependent(options.ttl, value, 'ttl'));
    // What PostgresCache would refuse to store (a BigInt, a cycle) it refuses here too.
    encodeEntry({ value, expires: undefined });
    if (!options.raw) return value;
    return { value, expires: ttl === null ? undefined : Date.now() + ttl };
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

  private checkOpen(): void {
    if (this.closed) throw new DisconnectedError();
  }

  /** An array of storable keys, as PostgresCache takes them (a string given as the list is refused). */
  private checkKeys(keys: unknown): void {
    this.checkOpen();
    assertKeys(keys);
  }

  private checkEntries(entries: unknown): void {
    this.checkOpen();
    assertEntryList(entries);
    for (const entry of entries as Array<{ key: string; value?: unknown; ttl?: unknown }>) {
      assertStorableValue(entry.value);
      normalizeTtl(entry.ttl);
    }
  }
}
