import type pg from 'pg';
import { InvalidOptionError, quoted } from '../errors.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import { assertIdentifier, assertPrefix, fittedIdentifier } from './identifiers.js';

export interface PostgresAdapterOptions {
  /**
   * PostgreSQL URL. Ignored when `pool` is given. Defaults to the `DATABASE_URL` environment variable, unless
   * `pool` is given or `poolConfig` names the server itself (connectionString, host, port, database or user).
   */
  connectionString?: string;
  /** A pool of your own. The adapter uses it and never ends it. */
  pool?: pg.Pool;
  /** Extra `pg.Pool` settings for the pool the adapter creates itself. */
  poolConfig?: pg.PoolConfig;
  /** Connections in the pool the adapter creates. Default 10. */
  poolSize?: number;
  /** Schema of the cache's tables. Default `public`. */
  schema?: string;
  /** Prefix of every table, sequence and function the cache creates. Default `pgcache_`. */
  tablePrefix?: string;
  /** Create the entries table UNLOGGED: much faster writes, emptied after a crash, not replicated. Default true. */
  unlogged?: boolean;
  /**
   * Channel the table's trigger notifies on. Default `<schema>_<tablePrefix>events`, or, when that would pass
   * PostgreSQL's 63-byte limit, its first 54 characters, `_` and 8 hex digits of its hash.
   */
  notifyChannel?: string;
  /**
   * Make sure the table announces every change on `notifyChannel` (installs the trigger if missing).
   * PostgresCache needs it; the plain adapter does not, and its writes are cheaper without. Once
   * installed, the trigger stays for every user of the table. Default false.
   */
  changeEvents?: boolean;
  /**
   * Server-side statement timeout, in ms. Default 5000. The client gives up 1 s later, so that a slow
   * statement fails as the server's cancel (a QueryError) and only a server that does not answer at all
   * as a ConnectionError.
   */
  statementTimeout?: number;
  /** How long to wait for a pool connection, in ms. Default 5000. */
  connectionTimeout?: number;
  /** Run migrations on first use. Set false for a role that may not run DDL; run `initDb()` elsewhere. Default true. */
  migrate?: boolean;
  /** How often to delete expired rows, in ms; 0 turns the sweeper off. Default 30000. */
  sweepInterval?: number;
  /** Rows deleted per sweeper statement. Default 1000. */
  sweepBatchSize?: number;
  /** Rows fetched per round trip by `iterator()`. Default 100. */
  iterationBatchSize?: number;
  /**
   * Most statements this adapter (or cache) runs at once, each on a pool connection; capped at the
   * pool's size. Calls beyond wait in order, and waiting reads or writes are merged (see `batchSize`):
   * a few full round trips do more than many contending ones, on the server most of all, where every
   * statement in flight competes for the same cores and every notifying commit for one lock. `wrap()`'s
   * lock holders take their connections from the same pool, outside this count. Default 4.
   */
  maxInFlight?: number;
  /**
   * Most single-key reads, or writes, merged into one statement. Merging happens only while
   * `maxInFlight` statements are running: calls that wait anyway wait together and share one round
   * trip. 1 turns merging off. Default 100.
   */
  batchSize?: number;
}

export interface ResolvedAdapterOptions {
  connectionString: string | undefined;
  pool: pg.Pool | undefined;
  poolConfig: pg.PoolConfig;
  poolSize: number;
  schema: string;
  tablePrefix: string;
  unlogged: boolean;
  notifyChannel: string;
  changeEvents: boolean;
  statementTimeout: number;
  /** Client-side deadline of every statement: `statementTimeout` plus `CLIENT_TIMEOUT_MARGIN`. */
  queryTimeout: number;
  connectionTimeout: number;
  migrate: boolean;
  sweepInterval: number;
  sweepBatchSize: number;
  iterationBatchSize: number;
  maxInFlight: number;
  batchSize: number;
}

/**
 * How much longer the client waits for an answer than the server's statement_timeout. The server's cancel
 * arrives one round trip after its timer fires; a second covers that round trip on a loaded server and
 * network, so the two timers no longer race, and still bounds a call on a server that stopped answering.
 */
export const CLIENT_TIMEOUT_MARGIN = 1000;

/** Listeners a store takes before Node warns: Keyv instances on one store each add one, as many as Keyv allows itself. */
export const KEYV_INSTANCES = 100;

/** `<schema>_<tablePrefix>events`, shortened as `fittedIdentifier` does when a long schema or prefix would pass the limit. */
function defaultNotifyChannel(schema: string, tablePrefix: string): string {
  return fittedIdentifier(`${schema}_${tablePrefix}events`);
}

function positiveInteger(
  value: number | undefined,
  fallback: number,
  name: string,
  allowZero = false,
): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < (allowZero ? 0 : 1)) {
    throw new InvalidOptionError(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer; got ${quoted(chosen)}`,
    );
  }
  return chosen;
}

/** A switch: true or false, not something that reads as one (the string 'false' is truthy). */
export function flag(value: unknown, fallback: boolean, name: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new InvalidOptionError(`${name} must be true or false; got ${quoted(value)}`);
  return value;
}

/** A duration that runs on a timer: past what Node's timers hold, it would fire after 1 ms. */
function timerMs(value: number | undefined, fallback: number, name: string, allowZero = false): number {
  const ms = positiveInteger(value, fallback, name, allowZero);
  if (ms > MAX_TIMER_MS - CLIENT_TIMEOUT_MARGIN) {
    throw new InvalidOptionError(
      `${name} must be at most ${MAX_TIMER_MS - CLIENT_TIMEOUT_MARGIN} ms; got ${ms}`,
    );
  }
  return ms;
}

function namesServer(config: pg.PoolConfig | undefined): boolean {
  if (!config) return false;
  const { connectionString, host, port, database, user } = config;
  return [connectionString, host, port, database, user].some((setting) => setting !== undefined);
}

export function resolveAdapterOptions(options: PostgresAdapterOptions = {}): ResolvedAdapterOptions {
  const schema = options.schema ?? 'public';
  const tablePrefix = options.tablePrefix ?? 'pgcache_';
  assertIdentifier(schema, 'schema');
  assertPrefix(tablePrefix);
  const notifyChannel = options.notifyChannel ?? defaultNotifyChannel(schema, tablePrefix);
  assertIdentifier(notifyChannel, 'notifyChannel');
  // The environment is a default for a cache given no connection, never a rival to the one it was given.
  const connectionString = options.pool
    ? undefined
    : (options.connectionString ?? (namesServer(options.poolConfig) ? undefined : process.env.DATABASE_URL));
  if (!options.pool && !connectionString && !options.poolConfig) {
    throw new InvalidOptionError('give connectionString, pool or poolConfig, or set DATABASE_URL');
  }
  const statementTimeout = timerMs(options.statementTimeout, 5000, 'statementTimeout');
  return {
    connectionString,
    pool: options.pool,
    poolConfig: options.poolConfig ?? {},
    poolSize: positiveInteger(options.poolSize, 10, 'poolSize'),
    schema,
    tablePrefix,
    unlogged: flag(options.unlogged, true, 'unlogged'),
    notifyChannel,
    changeEvents: flag(options.changeEvents, false, 'changeEvents'),
    statementTimeout,
    queryTimeout: statementTimeout + CLIENT_TIMEOUT_MARGIN,
    connectionTimeout: timerMs(options.connectionTimeout, 5000, 'connectionTimeout'),
    migrate: flag(options.migrate, true, 'migrate'),
    sweepInterval: timerMs(options.sweepInterval, 30_000, 'sweepInterval', true),
    sweepBatchSize: positiveInteger(options.sweepBatchSize, 1000, 'sweepBatchSize'),
    iterationBatchSize: positiveInteger(options.iterationBatchSize, 100, 'iterationBatchSize'),
    maxInFlight: positiveInteger(options.maxInFlight, 4, 'maxInFlight'),
    batchSize: positiveInteger(options.batchSize, 100, 'batchSize'),
  };
}
