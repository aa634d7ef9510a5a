import type pg from 'pg';
import { InvalidOptionError } from '../../errors.js';
import type { WatchNames } from './names.js';

export type Queryable = pg.Pool | pg.ClientBase;

export interface TableRef {
  schema: string;
  table: string;
  /** pg_class oid, as text. */
  oid: string;
}

/** The table, which must exist and be a plain table. */
export async function findTable(db: Queryable, schema: string, table: string): Promise<TableRef> {
  const { rows } = await db.query<{ oid: string; relkind: string }>(
    `SELECT c.oid::int8::text AS oid, c.relkind FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, table],
  );
  const found = rows[0];
  const name = `${JSON.stringify(schema)}.${JSON.stringify(table)}`;
  if (!found) throw new InvalidOptionError(`table ${name} does not exist`);
  if (found.relkind === 'p') {
    throw new InvalidOptionError(
      `${name} is a partitioned table: its events would name the partitions; watch the partitions instead`,
    );
  }
  if (found.relkind !== 'r')
    throw new InvalidOptionError(`${name} is not a table (relkind ${found.relkind})`);
  return { schema, table, oid: found.oid };
}

/**
 * A table others inherit from holds their rows too, but a change to one of those fires only the child's
 * triggers: watching the parent alone would miss it. (Partitioned tables are refused by findTable.)
 */
export async function assertNoInheritors(db: Queryable, ref: TableRef): Promise<void> {
  const { rows } = await db.query<{ child: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS child
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.inhparent = $1::oid ORDER BY 1`,
    [ref.oid],
  );
  if (rows.length === 0) return;
  throw new InvalidOptionError(
    `table ${JSON.stringify(ref.schema)}.${JSON.stringify(ref.table)} has tables that inherit from it ` +
      `(${rows.map((row) => row.child).join(', ')}): a change to their rows fires their triggers, not its ` +
      'own, so its events would miss them; watch those tables instead, as the partitions of a partitioned table',
  );
}

export async function primaryKeyColumns(db: Queryable, ref: TableRef): Promise<string[] | undefined> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::oid AND i.indisprimary
      ORDER BY k.position`,
    [ref.oid],
  );
  return rows.length > 0 ? rows.map((row) => row.name) : undefined;
}

export async function assertColumnsExist(db: Queryable, ref: TableRef, columns: string[]): Promise<void> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attname = ANY($2::text[])`,
    [ref.oid, columns],
  );
  const present = new Set(rows.map((row) => row.name));
  const missing = columns.filter((column) => !present.has(column));
  if (missing.length > 0) {
    throw new InvalidOptionError(
      `table ${JSON.stringify(ref.schema)}.${JSON.stringify(ref.table)} has no column ${missing.map((column) => JSON.stringify(column)).join(', ')}`,
    );
  }
}

export interface WatchTriggerRow {
  schema: string;
  table: string;
  name: string;
  /** Arguments as CREATE TRIGGER received them. */
  args: string[];
  /** pg_trigger.tgtype bit mask. */
  type: number;
  /** Fires for ordinary writes ('O' or 'A'). */
  enabled: boolean;
  /** Fires in every session, replica-mode ones too ('A', ENABLE ALWAYS): as an install leaves it. */
  firesAlways: boolean;
  /** False when a trigger of this name on the table calls another function (another cache's). */
  ours: boolean;
}

/** Triggers of this cache's watch: on one table (any function, to detect name clashes), or all of ours. */
export async function readWatchTriggers(
  db: Queryable,
  n: WatchNames,
  table?: TableRef,
): Promise<WatchTriggerRow[]> {
  const { rows } = await db.query<{
    schema: string;
    table: string;
    name: string;
    args: Buffer | null;
    type: number;
    enabled: string;
    ours: boolean | null;
  }>(
    `SELECT n.nspname AS schema, c.relname AS table, t.tgname AS name, t.tgargs AS args,
            t.tgtype::int AS type, t.tgenabled AS enabled, t.tgfoid = to_regprocedure($1) AS ours
       FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal
        AND ${table ? 't.tgrelid = $2::oid AND t.tgname = ANY($3::text[])' : 't.tgfoid = to_regprocedure($1)'}
      ORDER BY n.nspname, c.relname, t.tgname`,
    table ? [n.functionSignature, table.oid, [n.rowTrigger, n.truncateTrigger]] : [n.functionSignature],
  );
  return rows.map((row) => ({
    schema: row.schema,
    table: row.table,
    name: row.name,
    args: splitArguments(row.args),
    type: row.type,
    // 'R' (ENABLE REPLICA) fires only for replication writes: for ordinary ones it is as good as off.
    enabled: row.enabled === 'O' || row.enabled === 'A',
    firesAlways: row.enabled === 'A',
    ours: row.ours === true,
  }));
}

/** pg_trigger.tgargs holds each argument followed by a NUL byte. */
function splitArguments(raw: Buffer | null): string[] {
  if (!raw || raw.length === 0) return [];
  const text = raw.toString('utf8');
  return text.endsWith('\u0000') ? text.slice(0, -1).split('\u0000') : text.split('\u0000');
}

export async function schemaExists(db: Queryable, schema: string): Promise<boolean> {
  const { rows } = await db.query<{ exists: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS exists', [
    `"${schema}"`,
  ]);
  return rows[0]?.exists === true;
}

/** The source of the shared trigger function as installed, or undefined when there is none. */
export async function installedFunctionBody(db: Queryable, n: WatchNames): Promise<string | undefined> {
  const { rows } = await db.query<{ body: string }>(
    'SELECT prosrc AS body FROM pg_proc WHERE oid = to_regprocedure($1)',
    [n.functionSignature],
  );
  return rows[0]?.body;
}
