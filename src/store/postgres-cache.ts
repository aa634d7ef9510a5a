import { EventEmitter } from 'node:events';
import type { StoredData } from 'keyv';
import { answersInOrder, NamespaceTracker } from '../adapter/namespaces.js';
import { flag, KEYV_INSTANCES } from '../adapter/options.js';
import { PostgresAdapter, type StoredEntry } from '../adapter/postgres-adapter.js';
import {
  assertEntryList,
  assertKeys,
  assertWritableEntries,
  normalizeTtl,
  notAStringKey,
  storableKeys,
} from '../adapter/validation.js';
import { ConnectionError, type PostgresCacheError, toCacheError } from '../errors.js';
import type { CacheChange } from '../notify/change-event.js';
import type { PgListener } from '../notify/listener.js';
import { assertListenerOptions } from '../notify/listener-options.js';
import { type ListenerLease, leaseListener } from '../notify/shared-listener.js';
import { reportError } from '../report-error.js';
import { ChangeWaiters } from './change-waiters.js';
import { ClearsSeen } from './clears-seen.js';
import { CoherentL1, type InvalidationReason } from './coherent-l1.js';
import { entryId } from './entry-id.js';
import type { FillTicket } from './fill-guard.js';
import { heapBytesOf } from './heap-size.js';
import { keyvStoredKey } from './keyv-key.js';
import { assertL1Options, L1, type L1Entry } from './l1.js';
import { listenerConnection } from './listener-connection.js';
import { type ListenerWatch, watchListener } from './listener-watch.js';
import { type PostgresCacheOptions, triggerCheckIntervalOf } from './options.js';
import { type SentEvictions, sentEvictionsOf } from './sent-evictions.js';
import { type CacheStats, emptyStats } from './stats.js';
import { ClusterWrap, type Loader } from './wrap/cluster-wrap.js';
import type { Publish, WrapHost } from './wrap/host.js';
import {
  assertWrapDefaults,
  type RawWrapResult,
  type ValueDependent,
  type WrapOptions,
} from './wrap/options.js';
import { type KeyvData, keyvDataOf } from './wrap/serialization.js';
import { WritesInFlight } from './writes-in-flight.js';

export type { InvalidationReason } from './coherent-l1.js';

export interface PostgresCacheEvents {
  hit: [{ key: string; tier: 'l1' | 'postgres' }];
  miss: [{ key: string }];
  set: [{ key: string }];
  delete: [{ key: string }];
  invalidate: [{ namespace?: string; key?: string; reason: InvalidationReason }];
  /** Every change event applied, whether or not L1 held the entry (for monitoring and measuring propagation). */
  change: [CacheChange];
  connected: [];
  disconnected: [];
  error: [PostgresCacheError];
  /**
   * A `wrap()` refresh ahead of expiry ended: `value` is what was stored or, with `error`, the value still
   * served (as cache-manager reports its own refreshes).
   */
  refresh: [{ key: string; value?: unknown; error?: unknown }];
}

/**
 * For this package's own modules that delete rows with SQL of their own (the tag index): drops what they
 * deleted from this process's L1 at once, as `delete()` does, before their call returns. Not exported
 * from the package.
 */
export const forgetDeletedRows = Symbol('forgetDeletedRows');

/**
 * For `cached()`: a delete that sends its change event even when there was no row, so that a load in flight in
 * another process, which read the key before, learns that its result must not be stored. Not exported from
 * the package.
 */
export const announcedDelete = Symbol('announcedDelete');

/**
 * For `cached()` and the tag index: this process's deletes as they are sent, which a load in flight here must
 * hear of even when they find no row. Not exported from the package.
 */
export const evictionsSent = Symbol('evictionsSent');

/** For `cached()`: a set that answers with the version it wrote. Not exported from the package. */
export const versionedSet = Symbol('versionedSet');

/**
 * For the same modules: runs a write of their own as the cache runs its own (see `WritesInFlight.around`):
 * L1 is not read for what it touches (with no ids, any entry) until it has answered and `settle` has run.
 */
export const ownWrite = Symbol('ownWrite');

/**
 * A Keyv storage adapter with an in-process L1 in front of PostgreSQL, kept coherent across processes
 * by the change events the cache table's trigger sends. Use it wherever a Keyv store goes:
 * `new Keyv({ store: cache })`, cache-manager, NestJS.
 */
export class PostgresCache extends EventEmitter<PostgresCacheEvents> {
  readonly adapter: PostgresAdapter;
  private readonly namespaces = new NamespaceTracker();

  private readonly coherentL1: CoherentL1;
  private readonly lease: ListenerLease | undefined;
  private readonly counters = emptyStats();
  private watch: ListenerWatch | undefined;
  private readonly triggerCheckInterval: number;
  private readonly waiters = new ChangeWaiters();
  private sentEvictions: SentEvictions | undefined;
  private readonly writing = new WritesInFlight((error) =>
    this.reportError(toCacheError(error, 'updating L1 after a write')),
  );
  private readonly clears = new ClearsSeen();
  private closed = false;
  private closing: Promise<void> | undefined;
  private clusterWrap: ClusterWrap | undefined;
  /** Settles when the first check of where change events go has answered (`init()` waits for it). */
  private readonly firstChannelCheck: Promise<void>;
  private channelChecked: () => void = () => undefined;

  constructor(readonly options: PostgresCacheOptions = {}) {
    super();
    this.setMaxListeners(KEYV_INSTANCES);
    assertL1Options(options.l1);
    assertWrapDefaults(options.wrap);
    assertListenerOptions(options);
    this.triggerCheckInterval = triggerCheckIntervalOf(options.triggerCheckInterval);
    this.adapter = new PostgresAdapter({ ...options, changeEvents: true });
    this.adapter.on('error', (error) => this.reportError(error));
    const notifications = flag(options.notifications, true, 'notifications');
    flag(options.decodeL1Hits, false, 'decodeL1Hits');
    const l1Wanted = options.l1 !== false && (notifications || options.l1?.ttl !== undefined);
    this.coherentL1 = new CoherentL1(l1Wanted ? new L1(options.l1 || {}) : undefined, !notifications, {
      counters: this.counters,
      waiters: this.waiters,
      clears: this.clears,
      writing: this.writing,
      invalidated: (invalidation) => this.announce('invalidate', invalidation),
      changed: (change) => this.announce('change', change),
    });
    this.firstChannelCheck = new Promise((resolve) => {
      this.channelChecked = resolve;
    });
    if (notifications) {
      this.lease = leaseListener({
        connection: listenerConnection(this.adapter, options.listenerConnectionString),
        reconnect: options.reconnect,
        heartbeatInterval: options.heartbeatInterval,
        heartbeatTimeout: options.heartbeatTimeout,
        connectTimeout: this.adapter.options.connectionTimeout,
      });
      this.watchListener(this.lease.listener);
    }
  }

  /** Creates or migrates the tables with a role that may run DDL, once (for example in a migration job). */
  static initDb(options: PostgresCacheOptions = {}): Promise<void> {
    return PostgresAdapter.initDb({ ...options, changeEvents: true });
  }

  get opts() {
    return this.adapter.opts;
  }

  /**
   * False while L1 is bypassed: the listener is down, or the trigger sends change events to another channel than
   * this cache's. True while change events reach it, or with notifications off.
   */
  get coherent(): boolean {
    return this.coherentL1.trusted;
  }

  get stats(): CacheStats {
    const listener = this.lease?.listener;
    return {
      ...structuredClone(this.counters),
      l1: { ...this.counters.l1, size: this.coherentL1.l1?.size ?? 0, bytes: this.coherentL1.l1?.bytes ?? 0 },
      listener: {
        connected: listener?.connected ?? false,
        reconnects: listener?.reconnects ?? 0,
        backendPid: listener?.backendPid,
      },
    };
  }

  /**
   * Prepares the tables and, with notifications, waits until LISTEN is in place and the cache has checked which
   * channel the trigger notifies (L1 is used only if it is this cache's): at most `connectionTimeout`, then a
   * ConnectionError (the listener keeps retrying; L1 stays bypassed until then).
   */
  async init(): Promise<void> {
    const tables = this.adapter.init();
    try {
      await Promise.all([tables, this.listening()]);
    } catch (error) {
      // A failure of the tables is rethrown at once. If the listener gave up first, the tables' preparation
      // ends before init() answers, or a retry would inherit it; and its error, if it fails, says more (the
      // database is unreachable, not only slow to notify).
      await tables;
      throw error;
    }
  }

  private async listening(): Promise<void> {
    const listener = this.lease?.listener;
    if (!listener) return;
    const timeoutMs = this.adapter.options.connectionTimeout;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ConnectionError(
              listener.connected
                ? `change events were not seen to reach the listener within ${timeoutMs} ms (the check of the ` +
                    "trigger, or its probe through the cache's pool, has not answered; an 'error' event says " +
                    'why once it knows); L1 stays bypassed, and the check keeps retrying'
                : `change events did not flow within ${timeoutMs} ms; the listener keeps retrying`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all([listener.start(), this.firstChannelCheck]), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- Keyv storage adapter --------------------------------------------------------------

  /**
   * Set by Keyv to its namespace. Calls made on the cache directly go there too, as the keys of a Keyv with
   * `useKeyPrefix: false` must (nothing tells them apart); with no Keyv, or one without a namespace, they go
   * to `options.namespace`.
   */
  get namespace(): string | undefined {
    return this.namespaces.namespace;
  }

  set namespace(value: string | undefined) {
    this.namespaces.namespace = value;
  }

  /** The stored text; with `decodeL1Hits`, an L1 hit is already decoded for Keyv (see the option). */
  get(key: string): Promise<string | KeyvData | undefined>;
  /** The signature Keyv's store type declares, so that `new Keyv(cache)` type-checks. */
  get<Value>(key: string): Promise<StoredData<Value> | undefined>;
  get(key: string): Promise<string | KeyvData | undefined> {
    if (typeof key !== 'string') return Promise.reject(notAStringKey(key));
    const namespace = this.namespaceOf(key);
    const held = this.l1EntryOf(namespace, key);
    if (held === undefined) return this.readFromPostgres(namespace, key);
    return Promise.resolve(this.options.decodeL1Hits ? keyvDataOf(held) : held.value);
  }

  getMany(keys: string[]): Promise<Array<string | undefined>>;
  /** The signature Keyv's store type declares, so that `new Keyv(cache)` type-checks. */
  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>>;
  async getMany(keys: string[]): Promise<Array<string | undefined>> {
    assertKeys(keys);
    return answersInOrder(
      this.namespaceGroups(keys, (key) => key),
      (namespace, part) => this.getManyIn(namespace, part),
    );
  }

  private async getManyIn(namespace: string, keys: string[]): Promise<Array<string | undefined>> {
    const result: Array<string | undefined> = new Array(keys.length).fill(undefined);
    const missing: number[] = [];
    keys.forEach((key, index) => {
      const hit = this.fromL1(namespace, key);
      if (hit === undefined) missing.push(index);
      else result[index] = hit;
    });
    if (missing.length === 0) return result;
    const missingKeys = missing.map((index) => keys[index] as string);
    const tickets = this.coherentL1.beginAll(namespace, missingKeys);
    let entries: Array<StoredEntry | undefined>;
    try {
      entries = await this.adapter.readEntries(namespace, missingKeys);
    } catch (error) {
      for (const ticket of tickets) this.coherentL1.abandon(ticket);
      throw error;
    }
    entries.forEach((entry, position) => {
      result[missing[position] as number] = this.afterRead(
        tickets[position],
        missingKeys[position] as string,
        entry,
      );
    });
    return result;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.setOne(key, value, ttl);
    return true;
  }

  /** As `set`, answering with the version written. */
  [versionedSet](key: string, value: unknown, ttl?: number): Promise<number> {
    return this.setOne(key, value, ttl);
  }

  private async setOne(key: string, value: unknown, ttl: number | undefined): Promise<number> {
    const namespace = this.namespaceOf(key);
    const ticket = this.coherentL1.begin(namespace, key);
    let version: number;
    try {
      version = await this.writing.around(
        { ids: [entryId(namespace, key)] },
        () => this.adapter.writeEntry(namespace, key, value, ttl),
        (version) => this.coherentL1.fill(ticket, value as string, version, normalizeTtl(ttl) ?? undefined),
      );
    } catch (error) {
      this.coherentL1.abandon(ticket);
      throw error;
    }
    this.announce('set', { key });
    return version;
  }

  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]>;
  /** What Keyv's store type declares; Keyv's setMany() returns the booleans all the same. */
  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void>;
  // biome-ignore lint/suspicious/noConfusingVoidType: compatible with both signatures above
  async setMany(given: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[] | void> {
    assertEntryList(given);
    // A copy: it is read again once the write has answered, and the caller may have reused its array.
    const entries = given.map(({ key, value, ttl }) => ({ key, value, ttl }));
    const groups = this.namespaceGroups(entries, (entry) => entry.key);
    if (groups.length > 1) assertWritableEntries(entries);
    await Promise.all(groups.map(({ namespace, items }) => this.setManyIn(namespace, items)));
    return entries.map(() => true);
  }

  private async setManyIn(
    namespace: string,
    entries: Array<{ key: string; value: unknown; ttl?: number }>,
  ): Promise<void> {
    const tickets = this.coherentL1.beginAll(
      namespace,
      entries.map((entry) => entry.key),
    );
    try {
      await this.writing.around(
        { ids: entries.map((entry) => entryId(namespace, entry.key)) },
        () =>
          this.adapter.writeEntries(
            namespace,
            entries.map(({ key, value, ttl }) => ({ key, value: value as string, ttl })),
          ),
        (versions) =>
          entries.forEach((entry, index) => {
            const ttlLeft = normalizeTtl(entry.ttl) ?? undefined;
            this.coherentL1.fill(tickets[index], entry.value as string, versions[index] as number, ttlLeft);
          }),
      );
    } catch (error) {
      for (const ticket of tickets) this.coherentL1.abandon(ticket);
      throw error;
    }
    for (const entry of entries) this.announce('set', { key: entry.key });
  }

  delete(key: string): Promise<boolean> {
    return this.deleteOne(key, false);
  }

  /** As `delete`, and a key without a row is announced too (see `PostgresAdapter.removeEntry`). */
  [announcedDelete](key: string): Promise<boolean> {
    return this.deleteOne(key, true);
  }

  private async deleteOne(key: string, announceAbsent: boolean): Promise<boolean> {
    const namespace = this.namespaceOf(key);
    this[evictionsSent]().sent({ namespace, keys: [key] });
    const removed = await this.writing.around(
      { ids: [entryId(namespace, key)] },
      () => this.adapter.removeEntry(namespace, key, announceAbsent),
      (row) => this.coherentL1.forgetOwn(namespace, key, row?.version),
    );
    this.announce('delete', { key });
    return removed?.live === true;
  }

  /** Whether every key was there; true for no keys, as Keyv answers over a store without deleteMany. */
  async deleteMany(keys: string[]): Promise<boolean> {
    // A copy: it is read again once the delete has answered, and the caller may have reused its array.
    const own = storableKeys(keys);
    const groups = this.namespaceGroups(own, (key) => key);
    const deleted = await Promise.all(groups.map(({ namespace, items }) => this.deleteIn(namespace, items)));
    return deleted.every(Boolean);
  }

  /**
   * Deletes what `wrap(key)` stored for each key (under the wrap namespace, with Keyv's prefix), in
   * every process. `deleteMany` takes the keys as a Keyv store does; this takes them as `wrap()` does.
   */
  async deleteWrapped(keys: string[]): Promise<boolean> {
    assertKeys(keys);
    const namespace = this.wrapNamespace();
    return this.deleteIn(
      namespace,
      keys.map((key) => this.wrapStoredKey(namespace, key)),
    );
  }

  /** Clears the namespace `wrap()` stores in. */
  async clearWrapped(): Promise<void> {
    await this.clearIn(this.wrapNamespace());
  }

  private async deleteIn(namespace: string, keys: string[]): Promise<boolean> {
    const ids = keys.map((key) => entryId(namespace, key));
    this[evictionsSent]().sent({ namespace, keys });
    const removed = await this.writing.around(
      { ids },
      () => this.adapter.removeEntries(namespace, keys),
      (rows) => {
        const versions = new Map(rows.map((entry) => [entry.key, entry.version]));
        for (const key of keys) this.coherentL1.forgetOwn(namespace, key, versions.get(key));
      },
    );
    for (const key of keys) this.announce('delete', { key });
    return removed.filter((entry) => entry.live).length === keys.length;
  }

  /**
   * Clears the namespace of the Keyv on this store. When several Keyv namespaces share it, every one of them
   * (see `NamespaceTracker.clearTargets`): give each Keyv a store of its own, or use `clearNamespace()`.
   */
  async clear(): Promise<void> {
    // All queued at once: a call made after clear() must land after every one of them.
    const targets = this.namespaces.clearTargets(this.options.namespace ?? '');
    await Promise.all(targets.map((namespace) => this.clearIn(namespace)));
  }

  /** Clears one namespace, in every process: in constant time, with one change event. */
  async clearNamespace(namespace: string): Promise<void> {
    await this.clearIn(namespace);
  }

  private async clearIn(namespace: string): Promise<void> {
    this[evictionsSent]().sent({ namespace, everything: true });
    await this.writing.around(
      { namespace },
      () => this.adapter.clearNamespace(namespace),
      (version) =>
        this.coherentL1.clearedOwn(
          namespace,
          version,
          this.clears.answer(namespace, version, this.lease !== undefined),
        ),
    );
  }

  async has(key: string): Promise<boolean> {
    const namespace = this.namespaceOf(key);
    if (this.fromL1(namespace, key) !== undefined) return true;
    const found = await this.adapter.hasEntry(namespace, key);
    this.countPostgresRead(key, found);
    return found;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    assertKeys(keys);
    return answersInOrder(
      this.namespaceGroups(keys, (key) => key),
      (namespace, part) => this.hasManyIn(namespace, part),
    );
  }

  private async hasManyIn(namespace: string, keys: string[]): Promise<boolean[]> {
    const inL1 = keys.map((key) => this.fromL1(namespace, key) !== undefined);
    const rest = keys.filter((_, index) => !inL1[index]);
    const found = await this.adapter.hasEntries(namespace, rest);
    rest.forEach((key, index) => {
      this.countPostgresRead(key, found[index] === true);
    });
    let next = 0;
    return inL1.map((hit) => hit || (found[next++] ?? false));
  }

  /**
   * Resolves with true at the next change event for the key (or a clear, flush or lost listener, after
   * which anything may have changed), or with false after `timeoutMs`. Holds no connection while waiting.
   */
  waitForChange(namespace: string, key: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.waiters.wait(entryId(namespace, key), timeoutMs, signal);
  }

  /** What L1 holds now, for inspection (the harness's convergence check). Digest-identified entries have no key. */
  *l1Entries(): Generator<{
    namespace: string;
    key?: string;
    keyDigest?: string;
    version: number;
    value: string;
  }> {
    if (!this.coherentL1.l1) return;
    for (const [id, entry] of this.coherentL1.l1.entries()) {
      const separator = id.indexOf('\u0000');
      const namespace = id.slice(0, separator);
      const { version, value } = entry;
      yield id[separator + 1] === '\u0000'
        ? { namespace, keyDigest: id.slice(separator + 2), version, value }
        : { namespace, key: id.slice(separator + 1), version, value };
    }
  }

  /** Iterates PostgreSQL, the source of truth; L1 is not involved. */
  iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    return this.adapter.iterator(namespace ?? this.currentNamespace);
  }

  /** Closes the listener lease, the sweeper and the pool if it created one. Nothing is left to keep the process alive. */
  disconnect(): Promise<void> {
    // A second call resolves when the first has closed everything, not before.
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    this.coherentL1.trusted = false;
    this.coherentL1.l1?.clear();
    // Waiting wrap() calls look again now, and fail at once as disconnected.
    this.waiters.wakeWhere(() => true);
    this.watch?.stop();
    // Started first: it refuses every later statement at once, so that work still in flight fails typed.
    const adapterClosed = this.adapter.disconnect();
    await this.watch?.unlisten();
    await this.lease?.release();
    await adapterClosed;
  }

  // ---- wrap() / getOrSet() ------------------------------------------------------------------

  /**
   * The cached value of `key`, or the loader's, run once across every process on the database while the
   * others wait for it. cache-manager 7's call shapes: `(key, loader, ttl?, refreshThreshold?)` or
   * `(key, loader, options)`. Values are stored as Keyv stores them, under the namespace of the Keyv on
   * this store (or `options.namespace`, or Keyv's default `keyv`). `null` is cached; `undefined` is not.
   */
  wrap<T>(
    key: string,
    loader: Loader<T>,
    ttl?: ValueDependent<T>,
    refreshThreshold?: ValueDependent<T>,
  ): Promise<T>;
  wrap<T>(key: string, loader: Loader<T>, options: WrapOptions<T> & { raw: true }): Promise<RawWrapResult<T>>;
  wrap<T>(key: string, loader: Loader<T>, options: WrapOptions<T>): Promise<T>;
  wrap<T>(
    key: string,
    loader: Loader<T>,
    ttlOrOptions?: ValueDependent<T> | WrapOptions<T>,
    refreshThreshold?: ValueDependent<T>,
  ): Promise<T | RawWrapResult<T>> {
    this.clusterWrap ??= new ClusterWrap(this.wrapHost());
    return this.clusterWrap.wrap(key, loader, ttlOrOptions, refreshThreshold);
  }

  /** `wrap(key, loader, options)` under the name the Python original uses. */
  getOrSet<T>(
    key: string,
    loader: Loader<T>,
    options: WrapOptions<T> & { raw: true },
  ): Promise<RawWrapResult<T>>;
  getOrSet<T>(key: string, loader: Loader<T>, options?: WrapOptions<T>): Promise<T>;
  getOrSet<T>(key: string, loader: Loader<T>, options: WrapOptions<T> = {}): Promise<T | RawWrapResult<T>> {
    return this.wrap(key, loader, options);
  }

  private wrapHost(): WrapHost {
    return {
      namespace: () => this.wrapNamespace(),
      storedKey: (namespace, key) => this.wrapStoredKey(namespace, key),
      peek: (namespace, key) => this.l1EntryOf(namespace, key),
      keepDecoded: (namespace, key, held, decoded) =>
        this.coherentL1.l1?.keepDecoded(
          entryId(namespace, key),
          held as L1Entry,
          decoded,
          heapBytesOf(decoded),
        ),
      // wrap()'s own looks: the call was counted once as it began (L1) and is once more as it ends (PostgreSQL).
      read: async (namespace, key, client) => {
        const held = client ? undefined : this.coherentL1.entry(namespace, key);
        if (held !== undefined) return held.value;
        return this.readThrough(namespace, key, () => this.adapter.readEntry(namespace, key, client), true);
      },
      changeStamp: (namespace, key, client) => this.adapter.changeStamp(namespace, key, client),
      missedL1: (key, found) => this.countPostgresRead(key, found),
      write: async (namespace, key, text, ttl, client) => {
        const written = await this.wrapWrite(namespace, key, text, ttl, () =>
          this.adapter.writeEntry(namespace, key, text, ttl, client),
        );
        // writeEntry always writes.
        return written?.publish ?? (() => undefined);
      },
      writeIfUnchanged: (namespace, key, text, ttl, stamp, client) =>
        this.wrapWrite(namespace, key, text, ttl, () =>
          this.adapter.writeEntryIfUnchanged(namespace, key, text, ttl, stamp, client),
        ),
      watchOwnDeletes: (namespace, key) => {
        let deleted = false;
        const stop = this[evictionsSent]().listen((eviction) => {
          if ('tags' in eviction || eviction.namespace !== namespace) return;
          if ('everything' in eviction || eviction.keys.includes(key)) deleted = true;
        });
        return {
          get deleted() {
            return deleted;
          },
          stop,
        };
      },
      deleteOvertaken: async (namespace, key, version) => {
        if (this.closed) return;
        try {
          const removed = await this.writing.around(
            { ids: [entryId(namespace, key)] },
            () => this.adapter.removeEntryVersion(namespace, key, version),
            (row) => this.coherentL1.forgetOwn(namespace, key, row?.version),
          );
          if (removed) this.announce('delete', { key });
        } catch (error) {
          this.reportError(toCacheError(error, 'deleting a wrap() value a delete overtook'));
        }
      },
      waitForChange: (namespace, key, timeoutMs, signal) =>
        this.waitForChange(namespace, key, timeoutMs, signal),
      refreshed: (event) => this.announce('refresh', event),
      isClosed: () => this.closed,
      pool: this.adapter.pool,
      table: this.adapter.names.identity,
      queryTimeout: this.adapter.options.queryTimeout,
      defaults: this.options.wrap,
    };
  }

  /**
   * A wrap() write: the version written (undefined when `write` wrote nothing), and what puts it in L1 once the
   * holder's transaction is committed (an uncommitted row must not reach L1).
   */
  private async wrapWrite(
    namespace: string,
    key: string,
    text: string,
    ttl: number | undefined,
    write: () => Promise<number | undefined>,
  ): Promise<{ publish: Publish; version: number } | undefined> {
    const ticket = this.coherentL1.begin(namespace, key);
    let version: number | undefined;
    try {
      version = await write();
    } catch (error) {
      this.coherentL1.abandon(ticket);
      throw error;
    }
    if (version === undefined) {
      this.coherentL1.abandon(ticket);
      return undefined;
    }
    const written = version;
    const publish = (committed: boolean) => {
      if (!committed) return this.coherentL1.abandon(ticket);
      this.coherentL1.fill(ticket, text, written, ttl);
      this.announce('set', { key });
    };
    return { publish, version: written };
  }

  // ---- internals ---------------------------------------------------------------------------

  protected get currentNamespace(): string {
    return this.namespace ?? this.options.namespace ?? '';
  }

  /**
   * Where `wrap()` stores: where the first Keyv on this store reads (a Keyv without a namespace reads where the
   * cache's own calls go), else `options.namespace`, else Keyv's default. The first, not the last: a Keyv made
   * later must not move it, or what wrap() stored before could no longer be found, nor deleted.
   */
  private wrapNamespace(): string {
    if (!this.namespaces.anyAssigned) return this.options.namespace ?? 'keyv';
    return this.namespaces.first ?? this.options.namespace ?? '';
  }

  /** `key` as the first Keyv on this store stores it: prefixed with its namespace, unless it has none. */
  private wrapStoredKey(namespace: string, key: string): string {
    const unprefixed = this.namespaces.anyAssigned && this.namespaces.first === undefined;
    return unprefixed ? key : keyvStoredKey(namespace, key);
  }

  /** The namespace a Keyv-prefixed key belongs to, even when several Keyv instances share this store. */
  private namespaceOf(key: string | undefined): string {
    return this.namespaces.of(key ?? '', this.options.namespace ?? '');
  }

  /** A batch split by the namespace of each key (see `NamespaceTracker.groups`). */
  private namespaceGroups<Item>(items: Item[], keyOf: (item: Item) => string | undefined) {
    return this.namespaces.groups(items, keyOf, this.options.namespace ?? '');
  }

  /** L1 then PostgreSQL, filling L1 with what PostgreSQL returned if no newer change was seen meanwhile. */
  protected readOne(namespace: string, key: string): Promise<string | undefined> {
    const hit = this.fromL1(namespace, key);
    return hit === undefined ? this.readFromPostgres(namespace, key) : Promise.resolve(hit);
  }

  private readFromPostgres(namespace: string, key: string): Promise<string | undefined> {
    return this.readThrough(namespace, key, () => this.adapter.readEntry(namespace, key));
  }

  /** Reads from PostgreSQL under the fill guard, then fills L1 unless a newer change was seen meanwhile. */
  private async readThrough(
    namespace: string,
    key: string,
    read: () => Promise<StoredEntry | undefined>,
    uncounted = false,
  ): Promise<string | undefined> {
    const ticket = this.coherentL1.begin(namespace, key);
    let entry: StoredEntry | undefined;
    try {
      entry = await read();
    } catch (error) {
      this.coherentL1.abandon(ticket);
      throw error;
    }
    return this.afterRead(ticket, key, entry, uncounted);
  }

  private fromL1(namespace: string, key: string): string | undefined {
    return this.l1EntryOf(namespace, key)?.value;
  }

  /** The L1 entry itself, with what wrap() decoded from it if anything. */
  private l1EntryOf(namespace: string, key: string): L1Entry | undefined {
    if (!this.coherentL1.l1 || !this.coherentL1.trusted) return undefined;
    const entry = this.coherentL1.entry(namespace, key);
    if (entry === undefined) {
      this.counters.l1.misses++;
      return undefined;
    }
    this.counters.l1.hits++;
    // The hot path: no event object unless someone listens.
    if (this.listenerCount('hit') > 0) this.announce('hit', { key, tier: 'l1' });
    return entry;
  }

  private afterRead(
    ticket: FillTicket | undefined,
    key: string,
    entry: StoredEntry | undefined,
    uncounted = false,
  ) {
    if (!uncounted) this.countPostgresRead(key, entry !== undefined);
    if (entry === undefined) {
      this.coherentL1.abandon(ticket);
      return undefined;
    }
    this.coherentL1.fill(ticket, entry.value, entry.version, entry.ttlLeft);
    return entry.value;
  }

  /** A read that missed L1 found the key in PostgreSQL, or did not. */
  private countPostgresRead(key: string, found: boolean) {
    if (found) {
      this.counters.postgres.hits++;
      this.announce('hit', { key, tier: 'postgres' });
    } else {
      this.counters.postgres.misses++;
      this.announce('miss', { key });
    }
  }

  /** This process's deletes of the table's entries as they are sent (see `SentEvictions`). */
  [evictionsSent](): SentEvictions {
    this.sentEvictions ??= sentEvictionsOf(this.adapter.pool, this.adapter.names.identity);
    return this.sentEvictions;
  }

  [forgetDeletedRows](rows: ReadonlyArray<{ namespace: string; key: string; version: number }>): void {
    for (const row of rows) this.coherentL1.forgetOwn(row.namespace, row.key, row.version);
  }

  [ownWrite]<T>(
    entries: ReadonlyArray<{ namespace: string; key: string }> | 'everything',
    write: () => Promise<T>,
    settle: (answer: T) => void,
  ): Promise<T> {
    const marks =
      entries === 'everything'
        ? ({ everything: true } as const)
        : { ids: entries.map((entry) => entryId(entry.namespace, entry.key)) };
    return this.writing.around(marks, write, settle);
  }

  private watchListener(listener: PgListener) {
    const { adapter } = this;
    const channel = adapter.options.notifyChannel;
    this.watch = watchListener(listener, {
      channel,
      table: adapter.names.identity,
      startId: adapter.startId,
      triggerState: () => adapter.triggerState(),
      sendProbe: async (payload) => {
        await adapter.execute('SELECT pg_notify($1, $2)', [channel, payload], 'probing change events');
      },
      probeTimeout: adapter.options.connectionTimeout,
      retry: this.options.reconnect,
      checkInterval: this.triggerCheckInterval,
      counters: this.counters.events,
      isClosed: () => this.closed,
      isTrusted: () => this.coherentL1.trusted,
      trust: () => this.trust(),
      distrust: () => this.distrust(),
      flush: () => this.coherentL1.flush('flush'),
      apply: (change) => this.coherentL1.apply(change),
      firstCheckDone: () => this.channelChecked(),
      reportError: (error) => this.reportError(error),
    });
  }

  /** Events reach us and the trigger sends them to our channel: L1 is used again, from empty. */
  private trust() {
    this.coherentL1.flush('flush');
    // A handler of that flush may have disconnected the cache.
    if (this.coherentL1.trusted || this.closed) return;
    this.coherentL1.trusted = true;
    this.announce('connected');
  }

  /** Changes may stop reaching us: L1 is emptied and bypassed. Returns whether it was trusted until now. */
  private distrust(): boolean {
    const wasTrusted = this.coherentL1.trusted;
    this.coherentL1.trusted = false;
    this.coherentL1.flush('disconnected');
    if (wasTrusted) this.announce('disconnected');
    return wasTrusted;
  }

  /**
   * Emits to the application's handlers. One that throws must not leave the cache half-way through a change
   * (an eviction skipped, a reconnect not scheduled), nor fail a call that did its work: its error is
   * reported as an `error` event instead.
   */
  private announce<E extends Exclude<keyof PostgresCacheEvents, 'error'>>(
    event: E,
    ...args: PostgresCacheEvents[E]
  ): void {
    try {
      (this.emit as (event: E, ...args: PostgresCacheEvents[E]) => boolean)(event, ...args);
    } catch (error) {
      this.reportError(toCacheError(error, `a handler of the '${event}' event`));
    }
  }

  /** Background errors go to 'error' handlers when there are any; with none, or if one throws, they are dropped. */
  private reportError(error: PostgresCacheError) {
    reportError(this, error);
  }
}
