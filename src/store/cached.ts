import { assertStorableKey } from '../adapter/validation.js';
import {
  InvalidKeyError,
  InvalidOptionError,
  type PostgresCacheError,
  textOf,
  toCacheError,
} from '../errors.js';
import type { TableWatcher } from '../notify/table-watch/table-watcher.js';
import type { L1Options } from './l1.js';
import { announcedDelete, evictionsSent, type PostgresCache, versionedSet } from './postgres-cache.js';
import { type InvalidationRule, TableInvalidation } from './table-invalidation.js';
import { InvalidationLog } from './table-invalidation-log.js';
import { namespacedCache } from './table-invalidation-namespace.js';
import { CacheTags } from './table-invalidation-tags.js';
import { catalogOf, tableWatcherFor } from './table-invalidation-watcher.js';
import { decodeEntry, encodeEntry } from './wrap/serialization.js';
import { WriteEchoes } from './write-echoes.js';

/**
 * How long a stored result waits for its own change event before it is taken as unheard (and deleted). The
 * listener notices a dead connection sooner (heartbeats), and its loss settles every wait at once.
 */
const ECHO_TIMEOUT_MS = 10_000;

/** A table name (any change of it drops every result), or a rule whose `keys` are what `key` returns. */
export type CachedInvalidation = string | InvalidationRule;

export interface CachedOptions<A extends unknown[]> {
  cache: PostgresCache;
  /** Names the results' namespace, `cached:<name>`. Default: the function's name. */
  name?: string;
  /** The results' namespace, instead of `cached:<name>`. */
  namespace?: string;
  /** The cache key of a call. Default: the arguments as JSON. */
  key?: (...args: A) => string;
  /** Time to live of a result, in ms. Default: none (until an event drops it). */
  ttl?: number;
  /** Table events that drop results. */
  invalidateOn?: CachedInvalidation | readonly CachedInvalidation[];
  /** Tags of a call's result, for rules that evict by tag. */
  tags?: (...args: A) => readonly string[];
  /** Default: a watcher on the cache's listener connection and default table-change channel. */
  watcher?: TableWatcher;
  /** L1 of the results. Default: the cache's L1 settings. */
  l1?: L1Options | false;
  /** Cache failures that were absorbed: the function ran anyway, or its result was not stored. */
  onError?: (error: PostgresCacheError) => void;
}

export interface CachedStats {
  calls: number;
  /** Results served from the cache (L1 or PostgreSQL). */
  hits: number;
  /** Calls that ran the function (once per key however many callers shared the run). */
  loads: number;
  /** Runs that went around the cache because events could not be trusted (listener down or just back). */
  bypassed: number;
  /**
   * Results not stored, or deleted right after, because their rows changed while they were computed, or because
   * changes could not be heard then (the listener down or just back, or a write's own event not heard back).
   */
  refusedWrites: number;
  /** Absorbed cache failures. */
  errors: number;
}

export interface CachedFunction<A extends unknown[], R> {
  (...args: A): Promise<R>;
  /** The same call; `signal` stops this caller's wait only, never the run other callers share. */
  invoke(args: A, options?: { signal?: AbortSignal }): Promise<R>;
  /** Drops the result of these arguments in every process. */
  invalidate(...args: A): Promise<void>;
  /** Drops every result in every process. */
  clear(): Promise<void>;
  /** Resolves once table events are flowing (until then calls go around the cache). */
  readonly ready: Promise<void>;
  readonly stats: CachedStats;
  readonly namespace: string;
  readonly invalidation: TableInvalidation | undefined;
  /**
   * Stops listening and releases the connections it borrowed, once the results it stored have heard their own
   * events (and were deleted if a change came first: `stats.refusedWrites`).
   */
  close(): Promise<void>;
}

/**
 * Caches an async function's results per arguments in PostgresCache (L1 and PostgreSQL, shared by
 * every process) and drops them when the tables they depend on change:
 *
 *   const userName = cached(loadUserName, {
 *     cache, ttl: 60_000, key: (id) => String(id),
 *     invalidateOn: { table: 'users', keys: (row) => [String(row.id)] },
 *   });
 *
 * Concurrent calls with the same key in one process share one run; a failed run rejects its callers
 * and is not kept, so the next call runs afresh, and a caller that gives up (its signal) leaves the
 * run to the others. While the listener is down, and until the flush after it is back, calls go
 * around the cache (without table rules: they read it, and store nothing). A result is not kept if
 * its key was invalidated, in any process, while it was computed (with `notifications: false` on the
 * cache, only in this one). Results are stored as Keyv stores them (`{"value":…,"expires":…}`), so they
 * must survive JSON; `undefined` is never stored.
 *
 * Stampede protection is per process here (PostgresCache.wrap() gives the cluster-wide kind).
 */
export function cached<A extends unknown[], R>(
  fn: (...args: A) => Promise<R> | R,
  options: CachedOptions<A>,
): CachedFunction<A, R> {
  if (typeof fn !== 'function') throw new InvalidOptionError('cached() needs a function');
  const { cache, ttl, onError } = options;
  const name = options.name ?? fn.name;
  const namespace = options.namespace ?? (name ? `cached:${name}` : '');
  if (typeof namespace !== 'string' || namespace === '') {
    throw new InvalidOptionError('give cached() a name or a namespace (the function has no name)');
  }
  if (ttl !== undefined && (typeof ttl !== 'number' || !(ttl > 0))) {
    throw new InvalidOptionError(`ttl must be a positive number of ms; got ${textOf(ttl)}`);
  }
  const keyOf = options.key ?? argumentsAsJson;
  const tagsOf = options.tags;
  const rules = normalizeRules(options.invalidateOn);

  const store = namespacedCache(cache, namespace, options.l1);
  const stored = (key: string) => `${namespace}:${key}`;
  const tagIndex = tagsOf || rules.some((rule) => rule.tags) ? new CacheTags(store) : undefined;
  let invalidation: TableInvalidation | undefined;
  if (rules.length > 0) {
    const watcher = options.watcher ?? tableWatcherFor(cache);
    try {
      invalidation = new TableInvalidation({
        watcher,
        ownsWatcher: !options.watcher,
        target: {
          deleteMany: (keys) => store.deleteMany(keys.map(stored)),
          clear: () => store.clear(),
        },
        rules,
        tagIndex,
        catalog: catalogOf(cache),
        watchCheckInterval: cache.options.triggerCheckInterval,
      });
    } catch (error) {
      // A rule refused: what was opened for it must not outlive the call (nor hold the LISTEN connection).
      if (!options.watcher) watcher.close().catch(() => undefined);
      store.disconnect().catch(() => undefined);
      throw error;
    }
  }
  const counters: CachedStats = { calls: 0, hits: 0, loads: 0, bypassed: 0, refusedWrites: 0, errors: 0 };
  /** Runs in progress, by key, with the log token each began with and the tags of its result. */
  const flights = new Map<
    string,
    { result: Promise<R>; token: number; tags: readonly string[] | undefined }
  >();
  const absorb = (error: unknown, doing: string) => {
    counters.errors++;
    try {
      onError?.(toCacheError(error, `${doing} (cached ${namespace})`));
    } catch {
      // An application handler that throws has nowhere left to report to.
    }
  };
  invalidation?.on('error', (error) => absorb(error, 'invalidating'));
  store.on('error', (error) => absorb(error, 'the cache'));
  const trusted = () => invalidation?.trusted ?? true;
  const log = invalidation?.log ?? new InvalidationLog();
  // Without notifications no event comes back: a write has nothing to wait for.
  const echoes = store.options.notifications === false ? undefined : new WriteEchoes();
  /** Results being written or waiting for their own event (see `settle`). */
  const settling = new Set<Promise<void>>();
  const stopLogging = logDeletesOf(store, namespace, log, echoes);
  let closing = false;
  // Results are stored only while deletes made by other processes reach this one (see logDeletesOf).
  const mayStore = () => !closing && trusted() && store.coherent;

  const ready = Promise.all([store.init(), invalidation?.ready]).then(() => undefined);
  ready.catch((error: unknown) => absorb(error, 'starting'));

  async function read(key: string): Promise<{ value: R } | undefined> {
    try {
      const text = await store.get(stored(key));
      // The namespaced cache hands back text: its decodeL1Hits is off.
      const entry = decodeEntry(typeof text === 'string' ? text : undefined);
      return entry === undefined ? undefined : { value: entry.value as R };
    } catch (error) {
      absorb(error, 'reading');
      return undefined;
    }
  }

  /**
   * Stores the result unless its key changed since the run began. Answers once the write has; `settled` ends
   * once the write's own event is back, which deletes the result again if a change is heard to have come first.
   */
  async function write(
    key: string,
    tags: readonly string[] | undefined,
    value: R,
    token: number,
  ): Promise<{ settled: Promise<void> } | undefined> {
    if (value === undefined) return undefined;
    if (!mayStore() || log.changedSince(token, key, tags)) {
      counters.refusedWrites++;
      return undefined;
    }
    const echo = echoes?.expect(stored(key));
    let version: number;
    try {
      // Keyv's own format, so that a Keyv (or wrap()) on the same namespace reads it.
      const text = encodeEntry({ value, expires: ttl ? Date.now() + ttl : undefined });
      version =
        tagIndex && tags
          ? await tagIndex.set(stored(key), text, { ttl, tags, namespace })
          : await store[versionedSet](stored(key), text, ttl);
    } catch (error) {
      echo?.cancel();
      absorb(error, 'writing');
      return undefined;
    }
    return { settled: settle(key, tags, token, echo?.heard(version, ECHO_TIMEOUT_MS)) };
  }

  /**
   * A change that came before the write may be heard only after its answer: events reach this process in
   * commit order, so once the write's own event is back (`heard`), every change committed before it has been
   * heard too. Without notifications there is nothing to wait for.
   */
  async function settle(
    key: string,
    tags: readonly string[] | undefined,
    token: number,
    heard: Promise<boolean> | undefined,
  ): Promise<void> {
    const echoed = heard === undefined || (await heard);
    if (echoed && mayStore() && !log.changedSince(token, key, tags)) return;
    counters.refusedWrites++;
    try {
      await store.delete(stored(key));
    } catch (error) {
      absorb(error, 'deleting a result that went stale while it was written');
      invalidation?.evict({ everything: true });
    }
  }

  /** `token` is the log's, taken as the run began (before its read): ended once its write has settled. */
  async function run(key: string, args: A, tags: readonly string[] | undefined, token: number): Promise<R> {
    let writing = false;
    try {
      if (trusted()) {
        const hit = await read(key);
        if (hit) {
          counters.hits++;
          return hit.value;
        }
      } else counters.bypassed++;
      counters.loads++;
      const value = await fn(...args);
      const written = write(key, tags, value, token);
      // Counted from before the write is sent, so that close() waits for it: the write, then its settling.
      writing = true;
      const done = written.then((outcome) => outcome?.settled).catch(() => undefined);
      settling.add(done);
      void done.finally(() => {
        settling.delete(done);
        log.end(token);
      });
      // The callers have their value once the write has answered; whether it stays is settled in the background.
      await written;
      return value;
    } finally {
      if (!writing) log.end(token);
    }
  }

  function invoke(args: A, { signal }: { signal?: AbortSignal } = {}): Promise<R> {
    counters.calls++;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let key: string;
    let tags: readonly string[] | undefined;
    try {
      key = keyOf(...args);
      // A key the cache cannot store is the caller's mistake: say so rather than run uncached.
      assertStorableKey(key);
      tags = tagsOf?.(...args);
    } catch (error) {
      return Promise.reject(error);
    }
    let flight = flights.get(key);
    // A run that a change made since it began may answer with what the change replaced: a call made after
    // the change was heard must not join it (the run's result is not stored either, see write()).
    if (flight && log.changedSince(flight.token, key, flight.tags)) flight = undefined;
    if (!flight) {
      const token = log.begin();
      const started = { result: run(key, args, tags, token), token, tags };
      flight = started;
      flights.set(key, started);
      const forget = () => {
        if (flights.get(key) === started) flights.delete(key);
      };
      started.result.then(forget, forget);
    }
    return untilAborted(flight.result, signal);
  }

  const call = (...args: A) => invoke(args);
  return Object.defineProperties(call, {
    invoke: { value: invoke },
    invalidate: {
      value: async (...args: A) => {
        const key = keyOf(...args);
        log.markKeys([key]);
        // Announced even without a row: a run in another process that read the key before must not store it.
        await store[announcedDelete](stored(key));
      },
    },
    clear: {
      value: async () => {
        log.markEverything();
        await store.clear();
      },
    },
    ready: { value: ready },
    stats: { get: () => ({ ...counters }) },
    namespace: { value: namespace },
    invalidation: { value: invalidation },
    close: {
      value: async () => {
        closing = true;
        // Results still waiting for their own event (milliseconds, as a rule) are kept or deleted first.
        await Promise.all(settling);
        stopLogging();
        await invalidation?.close();
        await store.disconnect();
      },
    },
  }) as CachedFunction<A, R>;
}

/**
 * Logs the deletes of the namespace's rows that reach this process, whoever made them: another process's
 * `invalidate()` or `clear()` must stop a run here that began before it from storing what it loaded. While
 * they may not reach it (the listener down, or just back) nothing is stored: `mayStore` says so, and the log
 * counts everything as changed for the runs in flight across it. Every set also reaches the writes waiting for
 * their own event (`echoes`). Returns what stops it.
 */
function logDeletesOf(
  store: PostgresCache,
  namespace: string,
  log: InvalidationLog,
  echoes: WriteEchoes | undefined,
): () => void {
  const prefix = `${namespace}:`;
  const markKeys = (keys: readonly string[]) => {
    const own = keys.filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length));
    if (own.length > 0) log.markKeys(own);
  };
  store.on('change', (change) => {
    if (change.op === 'flush' || change.namespace !== namespace) return;
    if (change.op === 'clear') {
      log.markEverything();
      echoes?.lost();
      return;
    }
    if (change.op === 'set') {
      echoes?.set(change.key, change.keyDigest, change.version);
      return;
    }
    if (change.key === undefined) log.markEverything();
    else markKeys([change.key]);
  });
  // A flush event or the listener lost or back: deletes may have gone unheard.
  store.on('invalidate', ({ reason }) => {
    if (reason !== 'flush' && reason !== 'disconnected') return;
    log.markEverything();
    echoes?.lost();
  });
  // This process's own deletes as they are sent (another rule's, say): one that finds no row sends no event.
  return store[evictionsSent]().listen((eviction) => {
    if ('tags' in eviction) log.markTags(eviction.tags);
    else if (eviction.namespace !== namespace) return;
    else if ('everything' in eviction) log.markEverything();
    else markKeys(eviction.keys);
  });
}

function normalizeRules(invalidateOn: CachedOptions<unknown[]>['invalidateOn']): InvalidationRule[] {
  if (invalidateOn === undefined) return [];
  const list = Array.isArray(invalidateOn) ? invalidateOn : [invalidateOn];
  return list.map((rule: CachedInvalidation) => {
    if (typeof rule === 'string') return { table: rule };
    if (typeof rule !== 'object' || rule === null) {
      throw new InvalidOptionError('invalidateOn takes table names and rules ({ table, keys, … })');
    }
    return rule;
  });
}

/** The caller's wait, which its own signal may end; the run goes on for everyone else. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/**
 * The default key: the arguments as JSON. Arguments JSON cannot hold (a BigInt, a cycle), or would hold as
 * something else, so that calls that differ would share one result, need `options.key`: a function or a
 * symbol (written as nothing), NaN and the infinities (null), and an object that is not a plain one and has
 * nothing JSON writes (`{}` for every Map, Set, RegExp and Error alike). `undefined` is written as null.
 */
function argumentsAsJson(...args: unknown[]): string {
  try {
    return JSON.stringify(args, faithfulJson);
  } catch (error) {
    throw new InvalidKeyError(
      `cached(): the default key is the arguments as JSON, which these cannot be (${textOf(error)}); give options.key`,
    );
  }
}

function faithfulJson(_key: string, value: unknown): unknown {
  if (typeof value === 'function' || typeof value === 'symbol') throw new TypeError(`a ${typeof value}`);
  const number = value instanceof Number ? value.valueOf() : value;
  if (typeof number === 'number' && !Number.isFinite(number)) throw new TypeError(`the number ${number}`);
  if (typeof value === 'object' && value !== null && !isPlain(value) && Object.keys(value).length === 0) {
    throw new TypeError(`a ${value.constructor?.name ?? 'object'}, which JSON writes as {}`);
  }
  return value;
}

/** Plain objects, arrays, and boxed primitives (JSON writes `new Number(5)` as 5). */
function isPlain(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return (
    prototype === Object.prototype ||
    prototype === null ||
    Array.isArray(value) ||
    value instanceof Number ||
    value instanceof String ||
    value instanceof Boolean
  );
}
