import type pg from 'pg';
import { checkOut } from '../../adapter/checkout.js';
import { assertIdentifier } from '../../adapter/identifiers.js';
import { createSchemaUnlessExists } from '../../adapter/sql.js';
import { InvalidOptionError, isConnectionFailure, textOf, toCacheError } from '../../errors.js';
import { MAX_TIMER_MS } from '../../timer-limit.js';
import {
  assertColumnsExist,
  assertNoInheritors,
  findTable,
  installedFunctionBody,
  primaryKeyColumns,
  type Queryable,
  readWatchTriggers,
  schemaExists,
  type WatchTriggerRow,
} from './catalog.js';
import { type WatchLocation, type WatchNames, watchNames } from './names.js';
import { assertName, qualifiedName } from './quote.js';
import {
  asScript,
  createFunctionSql,
  createTriggersSql,
  dropTriggersSql,
  FUNCTION_BODY,
  lockSql,
  lockTimeoutSql,
} from './trigger-sql.js';

const DEFAULT_LOCK_TIMEOUT_MS = 5000;

interface LockTimeoutOption {
  /**
   * How long the change may wait for the table's lock, in ms, before it fails with a QueryError. While
   * it waits, every other write to the table waits behind it. Default 5000.
   */
  lockTimeout?: number;
}

export interface TableWatchOptions extends WatchLocation, LockTimeoutOption {
  /** The application table to watch. Any name PostgreSQL accepts; it is quoted, never interpolated raw. */
  table: string;
  /** Its schema. Default `public`. */
  schema?: string;
  /** Columns each event carries. Default: the primary key. `[]` sends events without keys. */
  keyColumns?: string[];
  /** Channel to notify on. Default `<cacheSchema>_<tablePrefix>table_changes`. */
  channel?: string;
  /** Only read the catalog and return the SQL; change nothing. */
  dryRun?: boolean;
}

export interface TableWatchPlan {
  schema: string;
  table: string;
  channel: string;
  keyColumns: string[];
  /** The whole change as one script (BEGIN … COMMIT), exactly what is run when applied. */
  sql: string;
  /** True when the table was already watched exactly like this: applying changes nothing. */
  upToDate: boolean;
  /** True when the SQL was run. */
  applied: boolean;
}

export interface TableUnwatchOptions extends WatchLocation, LockTimeoutOption {
  table: string;
  schema?: string;
  dryRun?: boolean;
}

export interface TableUnwatchPlan {
  schema: string;
  table: string;
  sql: string;
  /** Whether the table had this cache's triggers before. */
  wasWatched: boolean;
  applied: boolean;
}

/**
 * Installs (or re-points) the triggers that send this table's changes to a channel. Idempotent: a
 * table already watched with the same channel and key columns is left alone (no lock on it is taken).
 * The shared trigger function is (re)created under an advisory lock, so any number of processes may
 * install at once. Pass a pool or an idle client: the change runs in a transaction of its own.
 */
export async function installTableWatch(db: Queryable, options: TableWatchOptions): Promise<TableWatchPlan> {
  const n = watchNames(options);
  const schema = options.schema ?? 'public';
  assertName(schema, 'schema');
  assertName(options.table, 'table');
  const channel = options.channel ?? n.defaultChannel;
  assertIdentifier(channel, 'channel');
  if (options.keyColumns !== undefined) assertKeyColumns(options.keyColumns);
  const lockTimeout = lockTimeoutOf(options.lockTimeout);
  const target = `${JSON.stringify(schema)}.${JSON.stringify(options.table)}`;
  try {
    return await withClient(db, async (client) => {
      const ref = await findTable(client, schema, options.table);
      await assertNoInheritors(client, ref);
      const keyColumns = options.keyColumns ?? (await primaryKeyColumns(client, ref));
      if (!keyColumns) {
        throw new InvalidOptionError(
          `table ${target} has no primary key: pass keyColumns (or [] for events without keys)`,
        );
      }
      await assertColumnsExist(client, ref, keyColumns);
      const existing = await readWatchTriggers(client, n, ref);
      assertNoClash(existing, n, target);
      const table = qualifiedName(schema, options.table);
      // An older version of the function (from an older library) is replaced; a current one is left as it
      // is, so that a role other than its owner may watch its own tables with it.
      const functionCurrent = (await installedFunctionBody(client, n)) === FUNCTION_BODY;
      const statements = [
        ...lockSql(n),
        lockTimeoutSql(lockTimeout),
        ...((await schemaExists(client, n.cacheSchema))
          ? []
          : [createSchemaUnlessExists(`"${n.cacheSchema}"`)]),
        ...(functionCurrent ? [] : [createFunctionSql(n)]),
        ...dropTriggersSql(n, table),
        ...createTriggersSql(n, table, channel, keyColumns),
      ];
      const upToDate = isUpToDate(existing, n, channel, keyColumns) && functionCurrent;
      const plan = { schema, table: options.table, channel, keyColumns, sql: script(statements), upToDate };
      if (options.dryRun || upToDate) return { ...plan, applied: false };
      await inTransaction(client, statements);
      return { ...plan, applied: true };
    });
  } catch (error) {
    throw toCacheError(error, `watching table ${target}`);
  }
}

/** Drops this cache's triggers from the table. The shared function stays: other tables may use it. */
export async function uninstallTableWatch(
  db: Queryable,
  options: TableUnwatchOptions,
): Promise<TableUnwatchPlan> {
  const n = watchNames(options);
  const schema = options.schema ?? 'public';
  assertName(schema, 'schema');
  assertName(options.table, 'table');
  const lockTimeout = lockTimeoutOf(options.lockTimeout);
  const target = `${JSON.stringify(schema)}.${JSON.stringify(options.table)}`;
  try {
    return await withClient(db, async (client) => {
      const ref = await findTable(client, schema, options.table);
      const existing = await readWatchTriggers(client, n, ref);
      assertNoClash(existing, n, target);
      const statements = [
        lockTimeoutSql(lockTimeout),
        ...dropTriggersSql(n, qualifiedName(schema, options.table)),
      ];
      const plan = { schema, table: options.table, sql: script(statements), wasWatched: existing.length > 0 };
      if (options.dryRun || existing.length === 0) return { ...plan, applied: false };
      await inTransaction(client, statements);
      return { ...plan, applied: true };
    });
  } catch (error) {
    throw toCacheError(error, `unwatching table ${target}`);
  }
}

function lockTimeoutOf(value: number | undefined): number {
  const ms = value ?? DEFAULT_LOCK_TIMEOUT_MS;
  // PostgreSQL's lock_timeout takes at most 2^31 - 1 ms.
  if (!Number.isInteger(ms) || ms < 1 || ms > MAX_TIMER_MS) {
    throw new InvalidOptionError(
      `lockTimeout must be a whole number of ms from 1 to ${MAX_TIMER_MS}; got ${textOf(value)}`,
    );
  }
  return ms;
}

function assertKeyColumns(columns: unknown): asserts columns is string[] {
  if (!Array.isArray(columns)) throw new InvalidOptionError('keyColumns must be an array of column names');
  for (const column of columns) assertName(column, 'key column');
  if (new Set(columns).size !== columns.length) {
    throw new InvalidOptionError(`keyColumns names a column twice: ${JSON.stringify(columns)}`);
  }
}

function assertNoClash(existing: WatchTriggerRow[], n: WatchNames, target: string): void {
  const foreign = existing.find((trigger) => !trigger.ours);
  if (foreign) {
    throw new InvalidOptionError(
      `table ${target} has a trigger named ${JSON.stringify(foreign.name)} that does not call ${n.functionName}: another cache (schema or tablePrefix) watches it; use a different tablePrefix`,
    );
  }
}

function isUpToDate(
  existing: WatchTriggerRow[],
  n: WatchNames,
  channel: string,
  keyColumns: string[],
): boolean {
  const row = existing.find((trigger) => trigger.name === n.rowTrigger);
  const truncate = existing.find((trigger) => trigger.name === n.truncateTrigger);
  const same = (a: string[], b: string[]) =>
    a.length === b.length && a.every((value, index) => value === b[index]);
  return (
    row !== undefined &&
    truncate !== undefined &&
    row.firesAlways &&
    truncate.firesAlways &&
    same(row.args, [channel, ...keyColumns]) &&
    same(truncate.args, [channel])
  );
}

function script(statements: string[]): string {
  return asScript(['BEGIN', ...statements, 'COMMIT']);
}

function isPool(db: Queryable): db is pg.Pool {
  return 'totalCount' in db;
}

async function withClient<T>(db: Queryable, work: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if (!isPool(db)) return work(db);
  const client = await checkOut(db);
  try {
    const result = await work(client);
    client.release();
    return result;
  } catch (error) {
    // A connection that failed is not given back to the pool; one whose statement failed is.
    client.release(isConnectionFailure(error) ? (error as Error) : undefined);
    throw error;
  }
}

async function inTransaction(client: pg.ClientBase, statements: string[]): Promise<void> {
  await client.query('BEGIN');
  try {
    for (const statement of statements) await client.query(statement);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
