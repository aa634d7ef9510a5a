import type pg from 'pg';
import type { ChangeStamp } from '../../adapter/postgres-adapter.js';
import type { WrapDefaults } from './options.js';

/**
 * Settles a write in L1: with `committed` true the value goes in (if no newer change arrived meanwhile);
 * with false (rolled back) it is left out. Call it exactly once.
 */
export type Publish = (committed: boolean) => void;

/**
 * Whether this process sent a delete of an entry since the watch began: a delete that finds no row (a table
 * rule's eviction of a key not stored yet) changes nothing a fill could see in the table.
 */
export interface DeleteWatch {
  readonly deleted: boolean;
  stop(): void;
}

/** What `wrap()` needs from the cache it serves (PostgresCache provides it). */
export interface WrapHost {
  /** The namespace a Keyv on the store writes to now. */
  namespace(): string;
  /** `key` as that Keyv stores it (prefixed with the namespace). */
  storedKey(namespace: string, key: string): string;
  /** What L1 holds for the entry now, and what was decoded from it if anything; never waits. */
  peek(
    namespace: string,
    storedKey: string,
  ): { readonly value: string; readonly decoded?: unknown } | undefined;
  /** Keeps a value decoded from `held` beside it in L1, counted in L1's bytes (see `L1.keepDecoded`). */
  keepDecoded(namespace: string, storedKey: string, held: object, decoded: unknown): void;
  /**
   * L1 then PostgreSQL through the pool; with `client` (a lock holder's connection), PostgreSQL only, on it.
   * Counted in no stats: a call is counted as it looks in L1 (`peek`) and, if it missed, as it ends (`missedL1`).
   */
  read(namespace: string, storedKey: string, client?: pg.ClientBase): Promise<string | undefined>;
  /** See `PostgresAdapter.changeStamp`: changes with every write, delete or clear of the key, not with its expiry. */
  changeStamp(namespace: string, storedKey: string, client: pg.ClientBase): Promise<ChangeStamp>;
  /** A call that missed L1 ended: with a value found in PostgreSQL, or with its loader run (`found` false). */
  missedL1(storedKey: string, found: boolean): void;
  /** Writes through `client` or the pool; call the returned `Publish` once the write is committed or not. */
  write(
    namespace: string,
    storedKey: string,
    text: string,
    ttl: number | undefined,
    client?: pg.ClientBase,
  ): Promise<Publish>;
  /**
   * Writes on `client` only while the key's change stamp is still `stamp` (see
   * `PostgresAdapter.writeEntryIfUnchanged`): undefined when something wrote, deleted or cleared it since.
   */
  writeIfUnchanged(
    namespace: string,
    storedKey: string,
    text: string,
    ttl: number | undefined,
    stamp: ChangeStamp,
    client: pg.ClientBase,
  ): Promise<{ publish: Publish; version: number } | undefined>;
  /** Starts noting this process's deletes of the entry (see `DeleteWatch`). */
  watchOwnDeletes(namespace: string, storedKey: string): DeleteWatch;
  /**
   * Deletes what a fill wrote (`version`, and nothing newer) after a delete it did not see in time; reports a
   * failure, never rejects.
   */
  deleteOvertaken(namespace: string, storedKey: string, version: number): Promise<void>;
  /** See `PostgresCache.waitForChange`. */
  waitForChange(
    namespace: string,
    storedKey: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<boolean>;
  /** A background refresh ended: with the new value, or with the error that stopped it. */
  refreshed(event: { key: string; value?: unknown; error?: unknown }): void;
  /** True once the cache is disconnected: no new lock is taken then. */
  isClosed(): boolean;
  readonly pool: pg.Pool;
  /** The cache table's identity, part of every lock key so that two caches never share a lock. */
  readonly table: string;
  /** Client-side deadline of the lock statements: past the server's `statement_timeout`, as every other statement's. */
  readonly queryTimeout: number;
  readonly defaults: WrapDefaults | undefined;
}
