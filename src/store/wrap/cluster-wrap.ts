import type pg from 'pg';
import type { ChangeStamp } from '../../adapter/postgres-adapter.js';
import { assertStorableKey, normalizeTtl } from '../../adapter/validation.js';
import { DisconnectedError, LockTimeoutError } from '../../errors.js';
import { unlessAborted } from './abort.js';
import { fillLockKey, type HeldLock, tryFillLock } from './advisory-lock.js';
import type { DeleteWatch, Publish, WrapHost } from './host.js';
import { insideLoaderOn, outsideLoaders, runLoader } from './loader-frame.js';
import {
  assertWrapCall,
  type RawWrapResult,
  type ResolvedWrapOptions,
  resolveWrapOptions,
  type ValueDependent,
  valueDependent,
  type WrapOptions,
} from './options.js';
import { Semaphore } from './semaphore.js';
import { decodeEntry, encodeEntry, isLive, type KeyvEntry, parseEntry } from './serialization.js';
import { SingleFlight } from './singleflight.js';

export type Loader<T> = () => T | Promise<T>;

/** An entry a fill ended with, and whether this fill loaded it (rather than finding it in the cache). */
interface Filled {
  entry: KeyvEntry;
  loaded: boolean;
}

/** A loaded value, with the text and ttl to store unless it is `undefined` (which is never cached). */
interface Loaded {
  entry: KeyvEntry;
  stored?: { text: string; ttl: number | undefined };
}

/** First pause between two looks at a key another process is filling; it doubles up to `maxPollInterval`. */
const FIRST_POLL_MS = 20;

/** Why a fill did not load under the lock this time: another session holds it, or no holder slot was free. */
type NotLoaded = 'held elsewhere' | 'no slot';

/** Holder slots per pool: caches that share a pool share its connections, and the one left for reads. */
const holdersByPool = new WeakMap<pg.Pool, Semaphore>();

function holdersOf(pool: pg.Pool): Semaphore {
  let holders = holdersByPool.get(pool);
  if (!holders) {
    holders = new Semaphore(() => Math.max(1, (pool.options.max ?? 10) - 1));
    holdersByPool.set(pool, holders);
  }
  return holders;
}

/**
 * `wrap()` with stampede protection across every process on the database. In this process one fill per
 * key runs at a time (concurrent callers share it); across processes a fill runs under an advisory lock
 * per key. The holder looks again, loads, writes and frees the lock; the others wait for the key's change
 * event (or a bounded poll) without holding a connection, then read what the holder wrote.
 *
 * Holders keep a pool connection for the length of the loader, so at most pool size - 1 of them run at
 * once on a pool (whichever caches share it): other fills queue here, in memory, rather than on
 * `pool.connect()`; the connection left over keeps reads going. A fill inside a loader never queues (its
 * own caller may hold the slot it would wait for): it takes a connection of its own, past the slots.
 */
export class ClusterWrap {
  private readonly fills = new SingleFlight<Filled>();
  private readonly refreshing = new Set<string>();
  private readonly holders: Semaphore;

  constructor(private readonly host: WrapHost) {
    this.holders = holdersOf(host.pool);
  }

  async wrap<T>(
    key: string,
    loader: Loader<T>,
    ttlOrOptions?: ValueDependent<T> | WrapOptions<T>,
    refreshThreshold?: ValueDependent<T>,
  ): Promise<T | RawWrapResult<T>> {
    assertWrapCall(key, loader, ttlOrOptions, refreshThreshold);
    const given = typeof ttlOrOptions === 'object' && ttlOrOptions !== null ? ttlOrOptions : undefined;
    // A caller that has already given up starts nothing.
    if (given?.signal?.aborted) throw given.signal.reason;
    const namespace = this.host.namespace();
    const storedKey = this.host.storedKey(namespace, key);
    const hit = this.fromL1(namespace, storedKey);
    if (hit !== undefined) {
      // The hot path: nothing is allocated or validated beyond this unless the entry is due for refresh.
      const threshold = given ? given.refreshThreshold : refreshThreshold;
      if (threshold !== undefined && hit.expires !== undefined) {
        this.refreshAhead(key, namespace, storedKey, hit, loader, threshold, ttlOrOptions);
      }
      return given?.raw ? { value: hit.value as T, expires: hit.expires } : (hit.value as T);
    }
    assertStorableKey(key);
    const options = resolveWrapOptions(ttlOrOptions, refreshThreshold, this.host.defaults);
    // A fill started inside a loader skips the holder-permit queue, so it must not join one that waits
    // there (its own caller may hold the permit that fill waits for): it gets a flight of its own.
    const flight = `${namespace}\u0000${storedKey}${insideLoaderOn(this.host.pool) ? '\u0000nested' : ''}`;
    // Counted once per fill: callers that joined one running here made no lookup and no load of their own.
    const joined = this.fills.has(flight);
    const shared = this.fills.run(flight, () => this.fill(key, namespace, storedKey, loader, options));
    const filled = await unlessAborted(shared, options.signal);
    if (!joined) this.host.missedL1(storedKey, !filled.loaded);
    if (!filled.loaded && options.refreshThreshold !== undefined) {
      this.refreshAhead(key, namespace, storedKey, filled.entry, loader, options.refreshThreshold, options);
    }
    return result(filled.entry, options);
  }

  /** The live entry L1 holds, decoded once per L1 entry (callers of this process share the value). */
  private fromL1(namespace: string, storedKey: string): KeyvEntry | undefined {
    const held = this.host.peek(namespace, storedKey);
    if (held === undefined) return undefined;
    let entry = held.decoded as KeyvEntry | undefined;
    if (entry === undefined) {
      entry = parseEntry(held.value);
      if (entry === undefined) return undefined;
      this.host.keepDecoded(namespace, storedKey, held, entry);
    }
    return isLive(entry) ? entry : undefined;
  }

  /** Looks, then tries the lock; while another process holds it, waits for its write, up to `lockTimeout`. */
  private async fill<T>(
    key: string,
    namespace: string,
    storedKey: string,
    loader: Loader<T>,
    options: ResolvedWrapOptions<T>,
  ): Promise<Filled> {
    const lockKey = fillLockKey(this.host.table, namespace, storedKey);
    const deadline = Date.now() + options.lockTimeout;
    let pause = FIRST_POLL_MS;
    let lastMiss: NotLoaded = 'held elsewhere';
    for (;;) {
      const stopWaiting = new AbortController();
      // Wait from before the look: a write that lands between the look and the wait still wakes us.
      const changed = this.host.waitForChange(
        namespace,
        storedKey,
        Math.max(1, Math.min(pause, deadline - Date.now())),
        stopWaiting.signal,
      );
      // Queued for a holder slot, it still looks again when the key changes, and gives up at the deadline. Not
      // `Date.now() >= deadline` after the wait: a timer may fire a millisecond before the clock gets there, and
      // the fill would then stay queued until a slot came free.
      const stopQueueing = new AbortController();
      void this.host
        .waitForChange(namespace, storedKey, Math.max(1, deadline - Date.now()), stopWaiting.signal)
        .then(() => stopQueueing.abort());
      try {
        const cached = decodeEntry(await this.host.read(namespace, storedKey));
        if (cached !== undefined) return { entry: cached, loaded: false };
        const filled = await this.loadUnderLock(
          namespace,
          storedKey,
          lockKey,
          loader,
          options,
          stopQueueing.signal,
        );
        if (typeof filled !== 'string') return filled;
        lastMiss = filled;
        if (Date.now() >= deadline)
          return await this.afterLockTimeout(key, namespace, storedKey, loader, options, lastMiss);
        await changed;
      } finally {
        stopWaiting.abort();
      }
      pause = Math.min(pause * 2, options.maxPollInterval);
    }
  }

  /** Loads under the lock, unless another session holds it or `stopQueueing` aborted while this waited for a slot. */
  private async loadUnderLock<T>(
    namespace: string,
    storedKey: string,
    lockKey: [number, number],
    loader: Loader<T>,
    options: ResolvedWrapOptions<T>,
    stopQueueing: AbortSignal,
  ): Promise<Filled | NotLoaded> {
    const { pool } = this.host;
    // Inside a loader, a fill must not queue for a slot, which its own caller may hold: it takes a connection
    // of its own, past the slots (so a pool must allow for how deep loaders nest wrap()).
    const release = insideLoaderOn(pool) ? () => undefined : await this.holders.acquire(stopQueueing);
    if (release === undefined) return 'no slot';
    let deletes: DeleteWatch | undefined;
    let outcome: { filled: Filled; version?: number };
    try {
      // The cache may have closed while this fill queued for a slot.
      if (this.host.isClosed()) throw new DisconnectedError();
      const lock = await tryFillLock(pool, lockKey, options.lockMode, this.host.queryTimeout);
      if (lock === undefined) return 'held elsewhere';
      deletes = this.host.watchOwnDeletes(namespace, storedKey);
      outcome = await completeUnderLock<typeof outcome>(lock, async () => {
        // The stamp first: a write landing between it and the read below counts as one made meanwhile.
        const before = await this.host.changeStamp(namespace, storedKey, lock.client);
        // Another process may have written it between our look and the lock.
        const cached = decodeEntry(await this.host.read(namespace, storedKey, lock.client));
        if (cached !== undefined) return { result: { filled: { entry: cached, loaded: false } } };
        const loaded = await load(loader, options, pool);
        const filled = { entry: loaded.entry, loaded: true };
        // A set, delete or clear that landed while the loader ran is newer than what it loaded, and wins: the write
        // is made only while the stamp is unchanged. A delete that found no row left no trace (a table rule's
        // eviction of a key not stored yet): only this process's own are known.
        if (!loaded.stored || deletes?.deleted) return { result: { filled } };
        const written = await this.writeUnlessChanged(namespace, storedKey, loaded.stored, before, lock);
        if (!written) return { result: { filled } };
        return { result: { filled, version: written.version }, publish: written.publish };
      });
    } finally {
      deletes?.stop();
      release();
    }
    // An own delete sent while the write was on its way may have committed before it (one in flight as the
    // write began leaves no trace the write could see).
    if (outcome.version !== undefined && deletes?.deleted) {
      await this.host.deleteOvertaken(namespace, storedKey, outcome.version);
    }
    return outcome.filled;
  }

  /** Writes a loaded value on the lock's connection while the key's stamp is still `before`. */
  private writeUnlessChanged(
    namespace: string,
    storedKey: string,
    { text, ttl }: NonNullable<Loaded['stored']>,
    before: ChangeStamp,
    lock: HeldLock,
  ) {
    return this.host.writeIfUnchanged(namespace, storedKey, text, ttl, before, lock.client);
  }

  private async afterLockTimeout<T>(
    key: string,
    namespace: string,
    storedKey: string,
    loader: Loader<T>,
    options: ResolvedWrapOptions<T>,
    lastMiss: NotLoaded,
  ): Promise<Filled> {
    if (options.onLockTimeout === 'throw') {
      const waited =
        lastMiss === 'held elsewhere'
          ? 'another session (another process, or another fill of this one) has been filling this key'
          : 'every fill slot of its pool (pool size - 1, shared by the caches on it) has been busy';
      throw new LockTimeoutError(
        `wrap(${JSON.stringify(key)}): ${waited} for more than ${options.lockTimeout} ms`,
      );
    }
    return this.loadUnlocked(namespace, storedKey, loader, options);
  }

  /** Loads and stores without the cluster lock (after a lock timeout, with 'load'): other processes may load too. */
  private async loadUnlocked<T>(
    namespace: string,
    storedKey: string,
    loader: Loader<T>,
    options: ResolvedWrapOptions<T>,
  ): Promise<Filled> {
    const loaded = await load(loader, options, undefined);
    if (loaded.stored) {
      const { text, ttl } = loaded.stored;
      (await this.host.write(namespace, storedKey, text, ttl))(true);
    }
    return { entry: loaded.entry, loaded: true };
  }

  /** On a hit close to its expiry: one background refresh per key in this process, and one in the cluster. */
  private refreshAhead<T>(
    key: string,
    namespace: string,
    storedKey: string,
    hit: KeyvEntry,
    loader: Loader<T>,
    setting: ValueDependent<T>,
    ttlOrOptions: ValueDependent<T> | WrapOptions<T> | undefined,
  ): void {
    if (hit.expires === undefined) return;
    let threshold: number | undefined;
    let options: ResolvedWrapOptions<T>;
    try {
      threshold = valueDependent(setting, hit.value as T, 'refreshThreshold');
      if (threshold === undefined || hit.expires - Date.now() >= threshold) return;
      // Only now, when due: the hot path builds no options.
      options = resolveWrapOptions(ttlOrOptions, setting, this.host.defaults);
    } catch (error) {
      this.host.refreshed({ key, value: hit.value, error });
      return;
    }
    const id = `${namespace}\u0000${storedKey}`;
    if (this.refreshing.has(id)) return;
    this.refreshing.add(id);
    // Not part of the caller's loader, if there is one: it waits for a holder slot like any fill.
    outsideLoaders(() => {
      void this.refresh(key, namespace, storedKey, threshold, loader, options, hit.value).finally(() =>
        this.refreshing.delete(id),
      );
    });
  }

  /** Never rejects: the outcome goes to the host's `refreshed`; a failure names the value still served. */
  private async refresh<T>(
    key: string,
    namespace: string,
    storedKey: string,
    threshold: number,
    loader: Loader<T>,
    options: ResolvedWrapOptions<T>,
    served: unknown,
  ): Promise<void> {
    try {
      const release = await this.holders.acquire();
      if (release === undefined) return;
      try {
        if (this.host.isClosed()) return;
        const lockKey = fillLockKey(this.host.table, namespace, storedKey);
        const lock = await tryFillLock(this.host.pool, lockKey, options.lockMode, this.host.queryTimeout);
        if (lock === undefined) {
          // Another process is filling or refreshing it: no new attempt from here (every hit would make one)
          // until its write lands, or a poll interval has passed. The slot is not needed meanwhile.
          release();
          // Checked in the same turn as the wait begins: a disconnect() after it wakes the wait.
          if (!this.host.isClosed())
            await this.host.waitForChange(namespace, storedKey, options.maxPollInterval);
          return;
        }
        const deletes = this.host.watchOwnDeletes(namespace, storedKey);
        let refreshed: { loaded: Loaded; version?: number } | undefined;
        try {
          refreshed = await completeUnderLock<typeof refreshed>(lock, async () => {
            // The stamp first: a write landing between it and the read below counts as one made meanwhile.
            const before = await this.host.changeStamp(namespace, storedKey, lock.client);
            const expires = decodeEntry(await this.host.read(namespace, storedKey, lock.client))?.expires;
            if (expires === undefined || expires - Date.now() >= threshold) return { result: undefined };
            const fresh = await load(loader, options, this.host.pool);
            if (!fresh.stored) return { result: { loaded: fresh } };
            // Sets, deletes and clears take no lock: one that landed while the loader ran is newer than what it
            // loaded, and the write is made only while the stamp is unchanged. One still in flight as the write
            // begins leaves no trace the write can see: this process's own are heard as they are sent, as for a
            // fill. The entry merely expiring meanwhile is no change (unless the sweeper removed its row).
            if (deletes.deleted) return { result: undefined };
            const written = await this.writeUnlessChanged(namespace, storedKey, fresh.stored, before, lock);
            if (!written) return { result: undefined };
            return { result: { loaded: fresh, version: written.version }, publish: written.publish };
          });
        } finally {
          deletes.stop();
        }
        if (refreshed?.version !== undefined && deletes.deleted) {
          await this.host.deleteOvertaken(namespace, storedKey, refreshed.version);
          refreshed = undefined;
        }
        if (refreshed) this.host.refreshed({ key, value: refreshed.loaded.entry.value });
      } finally {
        release();
      }
    } catch (error) {
      this.host.refreshed({ key, value: served, error });
    }
  }
}

/**
 * Runs `work` on a held lock, commits, and only then lets its write reach L1. A failure before the
 * commit rolls back and frees the lock; a failed commit leaves L1 untouched.
 */
async function completeUnderLock<R>(
  lock: HeldLock,
  work: () => Promise<{ result: R; publish?: Publish | undefined }>,
): Promise<R> {
  let outcome: { result: R; publish?: Publish | undefined };
  try {
    outcome = await work();
  } catch (error) {
    await lock.abandon();
    throw error;
  }
  try {
    await lock.commit();
  } catch (error) {
    outcome.publish?.(false);
    throw error;
  }
  outcome.publish?.(true);
  return outcome.result;
}

/**
 * Runs the loader (inside a frame of the pool whose connection its fill holds, if it holds one) and prepares
 * what to store: `undefined` is returned to callers but never cached.
 */
async function load<T>(
  loader: Loader<T>,
  options: ResolvedWrapOptions<T>,
  holding: pg.Pool | undefined,
): Promise<Loaded> {
  const value = await runLoader(loader, holding);
  if (value === undefined) return { entry: { value, expires: undefined } };
  const ttl = normalizeTtl(valueDependent(options.ttl, value, 'ttl')) ?? undefined;
  const entry: KeyvEntry = { value, expires: ttl === undefined ? undefined : Date.now() + ttl };
  return { entry, stored: { text: encodeEntry(entry), ttl } };
}

function result<T>(entry: KeyvEntry, options: ResolvedWrapOptions<T>): T | RawWrapResult<T> {
  return options.raw ? { value: entry.value as T, expires: entry.expires } : (entry.value as T);
}
