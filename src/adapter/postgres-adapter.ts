import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { StoredData } from 'keyv';
import pg from 'pg';
import { DisconnectedError, isRolledBackForAnother, toCacheError } from '../errors.js';
import { reportError } from '../report-error.js';
import { checkOut } from './checkout.js';
import { Coalescer } from './coalescer.js';
import { ensureSchema } from './migrations.js';
import { type SchemaNames, schemaNames } from './names.js';
import { answersInOrder, NamespaceTracker } from './namespaces.js';
import {
  KEYV_INSTANCES,
  type PostgresAdapterOptions,
  type ResolvedAdapterOptions,
  resolveAdapterOptions,
} from './options.js';
import type { Claim } from './queue-claims.js';
import { ConnectionSlots } from './slots.js';
import { buildStatements, type Statement, type Statements } from './statements.js';
import { Sweeper } from './sweeper.js';
import {
  assertEntryList,
  assertKeyList,
  assertNamespace,
  assertStorableKey,
  assertStorableValue,
  assertWritableEntries,
  normalizeTtl,
  storableKeys,
} from './validation.js';
import { bySize, type IssuedWrite, MAX_STATEMENT_CHARS, ttlAtRun, writeSize } from './writes.js';

/** See `PostgresAdapter.changeStamp`. */
export interface ChangeStamp {
  version: number | undefined;
  cleared: number | undefined;
  /** The row was there but dead (expired, or hidden by the clear): the sweeper may remove it unseen. */
  dead: boolean;
}

/** A live row as the store layer needs it: the value, its version, and how long it has left. */
export interface StoredEntry {
  value: string;
  version: number;
  /** Milliseconds until the row expires by the database's clock; undefined when it never does. */
  ttlLeft: number | undefined;
}

/** A row a delete removed: its version, and whether it was still live (not yet expired). */
export interface RemovedEntry {
  key: string;
  version: number;
  live: boolean;
}

/** A statement's values, or a function that gives them once a connection is held. */
export type StatementValues = unknown[] | (() => unknown[]);

interface RemovedRow {
  key: string;
  version: string;
  live: boolean;
}

/**
 * How often a statement is tried that the server rolled back for another transaction's sake. Under READ
 * COMMITTED that is a deadlock's victim only; under REPEATABLE READ as a database's or role's default, it is
 * any write of a row that another transaction changed after the statement's snapshot, as long as writes of
 * that row keep landing.
 */
const STATEMENT_ATTEMPTS = 5;

/** Before the `attempt`+1st try: 5–25 ms, times the tries so far, at random so that two losers part. */
const retryPause = (attempt: number) => (5 + Math.random() * 20) * attempt;

const toRemoved = (row: RemovedRow): RemovedEntry => ({
  key: row.key,
  version: Number(row.version),
  live: row.live,
});

export interface TriggerState {
  channel: string | undefined;
  stamp: string | undefined;
}

export interface EntryToWrite {
  key: string;
  value: string;
  ttl?: number | undefined;
}

interface EntryRow {
  value: string;
  version: string;
  ttl_left: string | null;
}

const toEntry = (row: EntryRow): StoredEntry => ({
  value: row.value,
  version: Number(row.version),
  ttlLeft: row.ttl_left === null ? undefined : Number(row.ttl_left),
});

/**
 * A Keyv 5 storage adapter on PostgreSQL. Keys Keyv passes keep their `namespace:` prefix; the
 * namespace also has a column of its own, so `clear()` deletes one namespace through the primary key.
 *
 * The `*Entry`/`*Entries` methods take the namespace explicitly and return versions: they are what
 * `PostgresCache` builds on.
 */
export class PostgresAdapter extends EventEmitter {
  /** Keyv reads `opts.dialect` to decide whether to expose `iterator()`. */
  readonly opts: { dialect: 'postgres'; url: string; schema: string; tablePrefix: string };
  private readonly namespaces = new NamespaceTracker();
  readonly options: ResolvedAdapterOptions;
  readonly names: SchemaNames;
  /** Signs the re-point notice this adapter's start may send (see `RepointNotice`). */
  readonly startId = randomUUID();
  readonly pool: pg.Pool;

  private readonly ownsPool: boolean;
  private readonly statements: Statements;
  private readonly sweeper: Sweeper;
  private readonly slots: ConnectionSlots;
  private readonly valueReads: Coalescer<string, string | undefined>;
  private readonly entryReads: Coalescer<string, StoredEntry | undefined>;
  private readonly writes: Coalescer<IssuedWrite, number>;
  private readonly deletes: Coalescer<string, RemovedEntry | undefined>;
  private readonly forwardPoolError = (error: Error) =>
    reportError(this, toCacheError(error, 'idle pool connection'));
  private ready: Promise<void> | undefined;
  /** Set once the tables are known to be ready, so the hot path skips awaiting `ready`. */
  private prepared = false;
  /** Calls waiting for the preparation that have not reached the queue yet. */
  private onTheirWay = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresAdapterOptions = {}) {
    super();
    this.setMaxListeners(KEYV_INSTANCES);
    this.options = resolveAdapterOptions(options);
    this.names = schemaNames(this.options.schema, this.options.tablePrefix);
    this.statements = buildStatements(this.names);
    this.opts = {
      dialect: 'postgres',
      url: 'postgres',
      schema: this.options.schema,
      tablePrefix: this.options.tablePrefix,
    };
    this.ownsPool = this.options.pool === undefined;
    this.pool = this.options.pool ?? createPool(this.options);
    // A supplied pool's idle-connection errors are its owner's to handle.
    if (this.ownsPool) this.pool.on('error', this.forwardPoolError);
    const poolSize = this.options.pool?.options.max ?? this.options.poolConfig.max ?? this.options.poolSize;
    this.slots = new ConnectionSlots(
      Math.min(this.options.maxInFlight, poolSize),
      this.options.connectionTimeout,
    );
    const maxBatch = this.options.batchSize;
    const slots = this.slots;
    // Keys go as one array literal, a single string, as written values do: held below its limit the same way.
    const readSize = { sizeOf: (key: string) => key.length, maxBatchSize: MAX_STATEMENT_CHARS };
    this.valueReads = new Coalescer({
      slots,
      maxBatch,
      ...readSize,
      keyOf: (key) => key,
      writes: false,
      one: async (namespace, key) =>
        (await this.query<{ value: string }>(this.statements.getValue, [namespace, key], 'get'))[0]?.value,
      many: async (namespace, keys) =>
        (await this.selectEntries(namespace, keys)).map((entry) => entry?.value),
    });
    this.entryReads = new Coalescer({
      slots,
      maxBatch,
      ...readSize,
      keyOf: (key) => key,
      writes: false,
      one: async (namespace, key) => {
        const rows = await this.query<EntryRow>(this.statements.get, [namespace, key], 'get');
        return rows[0] ? toEntry(rows[0]) : undefined;
      },
      many: (namespace, keys) => this.selectEntries(namespace, keys),
    });
    this.writes = new Coalescer({
      slots,
      maxBatch,
      keyOf: (entry) => entry.key,
      writes: true,
      sizeOf: writeSize,
      maxBatchSize: MAX_STATEMENT_CHARS,
      one: async (namespace, entry) => (await this.upsertEntries(namespace, [entry]))[0] as number,
      many: (namespace, entries) => this.upsertEntries(namespace, entries),
    });
    this.deletes = new Coalescer({
      slots,
      maxBatch,
      ...readSize,
      keyOf: (key) => key,
      writes: true,
      one: async (namespace, key) => {
        const rows = await this.query<RemovedRow>(this.statements.delete, [namespace, key], 'delete');
        return rows[0] ? toRemoved(rows[0]) : undefined;
      },
      many: async (namespace, keys) => {
        const rows = await this.query<RemovedRow>(this.statements.deleteMany, [namespace, keys], 'delete');
        const removed = new Map(rows.map((row) => [row.key, toRemoved(row)]));
        return keys.map((key) => removed.get(key));
      },
    });
    this.sweeper = new Sweeper(
      (batch) => this.sweepBatch(batch),
      this.options.sweepInterval,
      this.options.sweepBatchSize,
      (error) => reportError(this, toCacheError(error, 'sweeping expired rows')),
    );
  }

  /** Creates or migrates the cache's tables once, with a role that may run DDL (for example from a migration job). */
  static async initDb(options: PostgresAdapterOptions = {}): Promise<void> {
    const adapter = new PostgresAdapter({ ...options, sweepInterval: 0, migrate: true });
    try {
      await adapter.init();
    } finally {
      await adapter.disconnect();
    }
  }

  /** Makes sure the tables exist (migrating if allowed) and starts the sweeper. Called lazily by every operation. */
  init(): Promise<void> {
    if (this.closed) return Promise.reject(new DisconnectedError());
    this.ready ??= this.prepare().catch((error: unknown) => {
      this.ready = undefined;
      throw toCacheError(error, `preparing cache tables ${this.names.identity}`);
    });
    return this.ready;
  }

  // ---- Keyv storage adapter --------------------------------------------------------------

  /** Set by Keyv to the namespace of the Keyv instance using this adapter. */
  get namespace(): string | undefined {
    return this.namespaces.namespace;
  }

  set namespace(value: string | undefined) {
    this.namespaces.namespace = value;
  }

  get(key: string): Promise<string | undefined>;
  /** The signature Keyv's store type declares, so that `new Keyv(adapter)` type-checks. */
  get<Value>(key: string): Promise<StoredData<Value> | undefined>;
  async get(key: string): Promise<string | undefined> {
    assertStorableKey(key);
    await this.usable();
    return this.valueReads.submit(this.namespaceOf(key), key);
  }

  getMany(keys: string[]): Promise<Array<string | undefined>>;
  /** The signature Keyv's store type declares, so that `new Keyv(adapter)` type-checks. */
  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>>;
  async getMany(keys: string[]): Promise<Array<string | undefined>> {
    assertKeyList(keys);
    const entries = await answersInOrder(
      this.namespaces.groups(keys, (key) => key),
      (namespace, part) => this.readEntries(namespace, part),
    );
    return entries.map((entry) => entry?.value);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.writeEntry(this.namespaceOf(key), key, value, ttl);
    return true;
  }

  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]>;
  /** What Keyv's store type declares; Keyv's setMany() returns the booleans all the same. */
  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void>;
  // biome-ignore lint/suspicious/noConfusingVoidType: compatible with both signatures above
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[] | void> {
    assertEntryList(entries);
    const written = entries.map(() => true);
    const groups = this.namespaces.groups(entries as EntryToWrite[], (entry) => entry.key);
    if (groups.length > 1) assertWritableEntries(entries);
    await Promise.all(groups.map(({ namespace, items }) => this.writeEntries(namespace, items)));
    return written;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.removeEntry(this.namespaceOf(key), key))?.live === true;
  }

  /** Whether every key was there; true for no keys, as Keyv answers over a store without deleteMany. */
  async deleteMany(keys: string[]): Promise<boolean> {
    assertKeyList(keys);
    const asked = keys.length;
    const groups = this.namespaces.groups(keys, (key) => key);
    const removed = await Promise.all(
      groups.map(({ namespace, items }) => this.removeEntries(namespace, items)),
    );
    return removed.flat().filter((entry) => entry.live).length === asked;
  }

  /** Clears the namespace of the Keyv on this adapter; every namespace it was given when several share it. */
  async clear(): Promise<void> {
    // All queued at once: a call made after clear() must land after every one of them.
    await Promise.all(this.namespaces.clearTargets('').map((namespace) => this.clearNamespace(namespace)));
  }

  async has(key: string): Promise<boolean> {
    return this.hasEntry(this.namespaceOf(key), key);
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    assertKeyList(keys);
    return answersInOrder(
      this.namespaces.groups(keys, (key) => key),
      (namespace, part) => this.hasEntries(namespace, part),
    );
  }

  /**
   * Live entries of one namespace as `[key, value]`, fetched in pages along the primary key. Keyv passes the
   * namespace last set on the store, as @keyv/test-suite expects of a store several Keyv instances share.
   */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    const ns = namespace ?? this.currentNamespace;
    assertNamespace(ns);
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      const rows = await this.run<{ key: string; value: string; key_hash: Buffer }>(
        this.statements.iterate,
        [ns, after, this.options.iterationBatchSize],
        'iterator',
        undefined,
        { namespace: ns, writes: false },
      );
      for (const row of rows) yield [row.key, row.value];
      const last = rows.at(-1);
      if (!last || rows.length < this.options.iterationBatchSize) return;
      after = last.key_hash;
    }
  }

  /** Stops the sweeper and ends the pool if the adapter created it. A supplied pool is left open. */
  disconnect(): Promise<void> {
    // A second call resolves when the first has closed everything, not before.
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    await this.sweeper.stop();
    await this.ready?.catch(() => undefined);
    // Calls made before disconnect() finish (or fail) first, on a supplied pool too: its owner may end it as
    // soon as this returns. Anything later is refused at once.
    await this.slots.idle();
    if (this.ownsPool) await this.pool.end();
  }

  // ---- Entry-level API (explicit namespace, versions) --------------------------------------

  /** @param client runs the query on this connection instead of the pool (a lock holder's own connection). */
  async readEntry(namespace: string, key: string, client?: pg.ClientBase): Promise<StoredEntry | undefined> {
    assertNamespace(namespace);
    assertStorableKey(key);
    if (!client) {
      await this.usable();
      return this.entryReads.submit(namespace, key);
    }
    const rows = await this.run<EntryRow>(this.statements.get, [namespace, key], 'get', client);
    return rows[0] ? toEntry(rows[0]) : undefined;
  }

  /**
   * The row's version, whether or not it has expired (undefined without a row), and that of the namespace's
   * last clear: they change when the key is written, deleted or cleared, not when it expires (only when the
   * sweeper then deletes it). Read on `client` (a lock holder's connection).
   */
  async changeStamp(namespace: string, key: string, client: pg.ClientBase): Promise<ChangeStamp> {
    assertNamespace(namespace);
    assertStorableKey(key);
    const rows = await this.run<{ version: string | null; cleared: string | null; dead: boolean }>(
      this.statements.changeStamp,
      [namespace, key],
      'changeStamp',
      client,
    );
    const { version = null, cleared = null, dead = false } = rows[0] ?? {};
    return {
      version: version === null ? undefined : Number(version),
      cleared: cleared === null ? undefined : Number(cleared),
      dead,
    };
  }

  async readEntries(namespace: string, given: string[]): Promise<Array<StoredEntry | undefined>> {
    assertNamespace(namespace);
    const keys = storableKeys(given);
    if (keys.length === 0) return [];
    await this.usable();
    return this.slots.run(() => this.selectEntries(namespace, keys), { namespace, keys, writes: false });
  }

  async hasEntry(namespace: string, key: string): Promise<boolean> {
    assertNamespace(namespace);
    assertStorableKey(key);
    const claim = { namespace, keys: [key], writes: false };
    return (await this.run(this.statements.has, [namespace, key], 'has', undefined, claim)).length > 0;
  }

  async hasEntries(namespace: string, given: string[]): Promise<boolean[]> {
    assertNamespace(namespace);
    const keys = storableKeys(given);
    if (keys.length === 0) return [];
    const claim = { namespace, keys, writes: false };
    const rows = await this.run<{ key: string }>(
      this.statements.hasMany,
      [namespace, keys],
      'hasMany',
      undefined,
      claim,
    );
    const found = new Set(rows.map((row) => row.key));
    return keys.map((key) => found.has(key));
  }

  /**
   * Writes one entry and returns the version the database gave it.
   * @param client runs the query on this connection instead of the pool (a lock holder's own connection).
   */
  async writeEntry(
    namespace: string,
    key: string,
    value: unknown,
    ttl?: number,
    client?: pg.ClientBase,
  ): Promise<number> {
    assertNamespace(namespace);
    assertStorableKey(key);
    assertStorableValue(value);
    // Checked here, so that a bad ttl fails its own call and not the statement it would share with others.
    const ttlMs = normalizeTtl(ttl);
    if (!client) {
      const issuedAt = performance.now();
      await this.usable();
      return this.writes.submit(namespace, { key, value, ttl: ttlMs, issuedAt });
    }
    const rows = await this.run<{ version: string }>(
      this.statements.set,
      [namespace, key, value, ttlMs],
      'set',
      client,
    );
    return Number(rows[0]?.version);
  }

  /**
   * As `writeEntry` on `client`, only while the key's change stamp is still `expected` (nothing wrote, deleted or
   * cleared it since it was read): the version written, or undefined when something did.
   */
  async writeEntryIfUnchanged(
    namespace: string,
    key: string,
    value: unknown,
    ttl: number | undefined,
    expected: ChangeStamp,
    client: pg.ClientBase,
  ): Promise<number | undefined> {
    assertNamespace(namespace);
    assertStorableKey(key);
    assertStorableValue(value);
    const rows = await this.run<{ version: string }>(
      this.statements.setIfUnchanged,
      [
        namespace,
        key,
        value,
        normalizeTtl(ttl),
        expected.version ?? null,
        expected.cleared ?? null,
        expected.dead,
      ],
      'set',
      client,
    );
    return rows[0] ? Number(rows[0].version) : undefined;
  }

  /** Deletes the key's row only while it has this version; the row removed, if it was. */
  async removeEntryVersion(
    namespace: string,
    key: string,
    version: number,
  ): Promise<RemovedEntry | undefined> {
    assertNamespace(namespace);
    assertStorableKey(key);
    return this.removeOne(this.statements.deleteVersion, [namespace, key, version]);
  }

  /**
   * Writes many entries in one statement (in several, not atomically, past MAX_STATEMENT_CHARS); a key named
   * twice keeps its last value. Returns each entry's version.
   */
  async writeEntries(namespace: string, entries: EntryToWrite[]): Promise<number[]> {
    assertNamespace(namespace);
    const latest = new Map<string, IssuedWrite>();
    const issuedAt = performance.now();
    for (const entry of entries) {
      assertStorableKey(entry.key);
      assertStorableValue(entry.value);
      latest.set(entry.key, { key: entry.key, value: entry.value, ttl: normalizeTtl(entry.ttl), issuedAt });
    }
    if (latest.size === 0) return [];
    await this.usable();
    // The parts run one after another in one turn of the queue: no call made after this one lands between
    // them, and a large setMany holds one connection, not all of them.
    const unique = [...latest.values()];
    const written = await this.slots.run(
      async () => {
        const versions: number[] = [];
        for (const part of bySize(unique)) {
          for (const version of await this.upsertEntries(namespace, part)) versions.push(version);
        }
        return versions;
      },
      { namespace, keys: [...latest.keys()], writes: true },
    );
    const versions = new Map(unique.map((entry, index) => [entry.key, written[index]]));
    return entries.map((entry) => versions.get(entry.key) ?? Number.NaN);
  }

  /**
   * Deletes one entry; returns the row removed, if there was one. With `announceAbsent`, a key without a row
   * gets a delete event all the same (the trigger sends one only for a row): whoever read the key before the
   * delete, in any process, hears that what it read may be stale.
   */
  async removeEntry(
    namespace: string,
    key: string,
    announceAbsent = false,
  ): Promise<RemovedEntry | undefined> {
    assertNamespace(namespace);
    assertStorableKey(key);
    if (!announceAbsent) {
      await this.usable();
      return this.deletes.submit(namespace, key);
    }
    return this.removeOne(this.statements.deleteAnnounced, [namespace, key]);
  }

  /** A delete of one key (`values` starts with its namespace and key) on the pool, in order with the key's calls. */
  private async removeOne(statement: Statement, values: [string, string, ...unknown[]]) {
    const [namespace, key] = values;
    const claim = { namespace, keys: [key], writes: true };
    const rows = await this.run<RemovedRow>(statement, values, 'delete', undefined, claim);
    return rows[0] ? toRemoved(rows[0]) : undefined;
  }

  /** Deletes the keys; returns the rows removed. */
  async removeEntries(namespace: string, given: string[]): Promise<RemovedEntry[]> {
    assertNamespace(namespace);
    const keys = storableKeys(given);
    if (keys.length === 0) return [];
    const claim = { namespace, keys, writes: true };
    const rows = await this.run<RemovedRow>(
      this.statements.deleteMany,
      [namespace, keys],
      'deleteMany',
      undefined,
      claim,
    );
    return rows.map(toRemoved);
  }

  /**
   * Clears one namespace in constant time and sends one `clear` event: its rows are gone for every
   * reader at once, and deleted by the sweeper afterwards. Returns the clear's version.
   */
  async clearNamespace(namespace: string): Promise<number> {
    assertNamespace(namespace);
    const rows = await this.run<{ version: string }>(
      this.statements.clear,
      [namespace, this.options.notifyChannel],
      'clear',
      undefined,
      { namespace, writes: true },
    );
    // Reclaim the cleared rows soon, in the background, rather than at the next interval.
    this.sweeper.soon();
    return Number(rows[0]?.version ?? 0);
  }

  /**
   * The channel the change trigger notifies now (undefined when it has none, or a trigger does not fire in
   * every session), and a stamp that changes whenever one of the table's triggers is altered.
   */
  async triggerState(): Promise<TriggerState> {
    const rows = await this.run<{ channel: string | null; stamp: string | null }>(
      this.statements.triggerState,
      [],
      'triggerState',
    );
    return { channel: rows[0]?.channel ?? undefined, stamp: rows[0]?.stamp ?? undefined };
  }

  /**
   * A statement of a module built on the adapter (the tag index), run as the adapter runs its own: after
   * the tables are ready, through a connection slot (so `disconnect()` waits for it), within `queryTimeout`,
   * in order with the calls on what it claims. Values given as a function are taken once a connection is
   * held (a ttl counted from the call must not count the wait).
   */
  async execute<Row>(
    text: string,
    values: StatementValues,
    operation: string,
    claim?: Claim,
  ): Promise<Row[]> {
    return this.run<Row>({ text }, values, operation, undefined, claim);
  }

  /** Deletes expired rows now, in batches, unless another process is sweeping. Returns rows removed. */
  sweep(): Promise<number> {
    return this.sweeper.sweep();
  }

  // ---- internals -----------------------------------------------------------------------------

  private get currentNamespace(): string {
    return this.namespace ?? '';
  }

  /** The namespace a Keyv-prefixed key belongs to, even when several Keyv instances share this adapter. */
  private namespaceOf(key: string | undefined): string {
    return this.namespaces.of(key ?? '');
  }

  private async prepare(): Promise<void> {
    const client = await checkOut(this.pool);
    try {
      await ensureSchema(
        client,
        {
          names: this.names,
          unlogged: this.options.unlogged,
          notifyChannel: this.options.changeEvents ? this.options.notifyChannel : undefined,
          startId: this.startId,
        },
        this.options.migrate,
        this.options.queryTimeout,
      );
      client.release();
    } catch (error) {
      // Never reused: a statement that timed out may still be running on it.
      client.release(true);
      throw error;
    }
    this.prepared = true;
    if (!this.closed) this.sweeper.start();
  }

  private async sweepBatch(batchSize: number): Promise<number> {
    const rows = await this.run<{ removed: number }>(this.statements.sweep, [batchSize], 'sweep');
    return Number(rows[0]?.removed ?? 0);
  }

  /** Rows of the keys (distinct keys, one statement), in the keys' order. */
  private async selectEntries(namespace: string, keys: string[]): Promise<Array<StoredEntry | undefined>> {
    const rows = await this.query<EntryRow & { key: string }>(
      this.statements.getMany,
      [namespace, keys],
      'getMany',
    );
    const found = new Map(rows.map((row) => [row.key, toEntry(row)]));
    return keys.map((key) => found.get(key));
  }

  /** Writes entries with distinct keys in one statement; returns their versions in their order. */
  private async upsertEntries(namespace: string, entries: IssuedWrite[]): Promise<number[]> {
    const [only] = entries;
    if (entries.length === 1 && only) {
      // One value goes as a parameter of its own, not inside an array literal (which could pass V8's limit).
      const rows = await this.query<{ version: string }>(
        this.statements.set,
        () => [namespace, only.key, only.value, ttlAtRun(only)],
        'set',
      );
      return [Number(rows[0]?.version)];
    }
    const rows = await this.query<{ key: string; version: string }>(
      this.statements.setMany,
      () => [namespace, entries.map((e) => e.key), entries.map((e) => e.value), entries.map(ttlAtRun)],
      'setMany',
    );
    const versions = new Map(rows.map((row) => [row.key, Number(row.version)]));
    return entries.map((entry) => versions.get(entry.key) ?? Number.NaN);
  }

  /** Throws once disconnected; prepares the tables on first use. */
  private async usable(): Promise<void> {
    if (this.closed) throw new DisconnectedError();
    // While calls made during the preparation are still on their way to the queue, later ones take the same
    // way, so that they reach it after them (calls on one key keep their order).
    if (this.prepared && this.onTheirWay === 0) return;
    this.onTheirWay++;
    try {
      await this.init();
    } finally {
      this.onTheirWay--;
    }
    // disconnect() came while the tables were being prepared: it does not wait for calls not yet queued.
    if (this.closed) throw new DisconnectedError();
  }

  /** Runs a statement on the given connection, or on the pool once a connection slot is free. */
  /** @param claim what the statement reads or writes, so that no merged call overtakes it (see ConnectionSlots). */
  private async run<Row>(
    statement: Statement,
    values: StatementValues,
    operation: string,
    client?: pg.ClientBase,
    claim?: Claim,
  ): Promise<Row[]> {
    await this.usable();
    if (client) return this.query(statement, values, operation, client);
    return this.slots.run(() => this.query(statement, values, operation), claim);
  }

  /**
   * Runs a statement; values given as a function are taken once a connection is held. One the server rolled
   * back for another's sake runs again where it was a transaction of its own: always on the pool, and on a given
   * connection when no transaction block is open on it.
   */
  private async query<Row>(
    statement: Statement,
    values: StatementValues,
    operation: string,
    client?: pg.ClientBase,
  ): Promise<Row[]> {
    // Tried again only while the tries so far took less than one statement's timeout: a call that keeps losing
    // ends within about twice that, not five times.
    const retryUntil = performance.now() + this.options.statementTimeout;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.queryOnce<Row>(statement, values, operation, client);
      } catch (error) {
        const again =
          attempt < STATEMENT_ATTEMPTS &&
          performance.now() < retryUntil &&
          (!client || outsideTransaction(client));
        if (!again || !isRolledBackForAnother(error)) throw error;
        // A moment for the transaction it gave way to: run again at once, it could take the row that
        // transaction was waiting for first, and the two would deadlock again.
        await new Promise((resolve) => setTimeout(resolve, retryPause(attempt)));
      }
    }
  }

  private async queryOnce<Row>(
    statement: Statement,
    values: StatementValues,
    operation: string,
    client?: pg.ClientBase,
  ): Promise<Row[]> {
    let held: pg.PoolClient | undefined;
    try {
      if (!client) held = await checkOut(this.pool);
      const connection = client ?? (held as pg.PoolClient);
      const result = await connection.query({
        name: statement.name,
        text: statement.text,
        values: typeof values === 'function' ? values() : values,
        query_timeout: this.options.queryTimeout,
      } as pg.QueryConfig);
      held?.release();
      return result.rows as Row[];
    } catch (error) {
      // As pg's pool.query() does, a connection whose statement failed is not reused (it may still be running),
      // except after a rollback for another transaction's sake: the server has answered, and the statement
      // (prepared already) will likely run again at once.
      held?.release(isRolledBackForAnother(error) ? undefined : true);
      throw toCacheError(error, `${operation} on ${this.names.identity}`);
    }
  }
}

/**
 * Whether the connection is outside any transaction block, as its last answer said (pg 8.21+ tells; with an
 * older pg, a connection is taken to be inside one). After a failed statement, 'I' means it ended alone.
 */
function outsideTransaction(client: pg.ClientBase): boolean {
  const status = (client as Partial<Pick<pg.ClientBase, 'getTransactionStatus'>>).getTransactionStatus;
  return typeof status === 'function' && status.call(client) === 'I';
}

function createPool(options: ResolvedAdapterOptions): pg.Pool {
  return new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectionTimeout,
    statement_timeout: options.statementTimeout,
    application_name: 'postgres-cache',
    keepAlive: true,
    allowExitOnIdle: true,
    ...options.poolConfig,
  });
}
