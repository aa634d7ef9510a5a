import type { WatchNames } from './names.js';
import { quoteLiteral } from './quote.js';

/** NOTIFY refuses payloads of 8000 bytes or more. */
export const PAYLOAD_LIMIT_BYTES = 7999;

/**
 * The key columns of one row version (already converted, in `doc`) as a JSON object. Integers past
 * 15 digits, and any other non-integer number, travel as strings: JavaScript would round them, and keys
 * must come out exact.
 */
const KEY_OBJECT = `(SELECT coalesce(jsonb_object_agg(k.name,
              CASE WHEN jsonb_typeof(doc -> k.name) = 'number' AND (doc -> k.name)::text !~ '^-?[0-9]{1,15}$'
                   THEN to_jsonb(doc ->> k.name) ELSE doc -> k.name END), '{}'::jsonb)
            FROM unnest(key_columns) AS k(name))`;

/**
 * The one trigger function all watched tables of a cache share. Its arguments are the channel and
 * then the key columns, so neither is baked into the function: re-pointing a watch re-creates the
 * trigger only.
 */
export function createFunctionSql(n: WatchNames): string {
  return `CREATE OR REPLACE FUNCTION ${n.functionName}() RETURNS trigger LANGUAGE plpgsql AS $fn$${FUNCTION_BODY}$fn$`;
}

/** The function's source as pg_proc.prosrc keeps it: an install compares it to know whether to replace it. */
export const FUNCTION_BODY = `
DECLARE
  key_columns text[] := TG_ARGV[1:TG_NARGS - 1];
  event jsonb := jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', lower(TG_OP));
  doc jsonb;
  keyless boolean := false;
BEGIN
  -- Each row version is converted once, into a variable: converting it inside the key query would repeat
  -- the conversion at every use, and a wide row's conversion (its TOASTed columns read back) dominates.
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    doc := CASE WHEN TG_NARGS > 1 THEN to_jsonb(OLD) END;
    keyless := keyless OR NOT coalesce(doc ?& key_columns, true);
    event := event || jsonb_build_object('old', ${KEY_OBJECT});
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    doc := CASE WHEN TG_NARGS > 1 THEN to_jsonb(NEW) END;
    keyless := keyless OR NOT coalesce(doc ?& key_columns, true);
    event := event || jsonb_build_object('new', ${KEY_OBJECT});
  END IF;
  IF keyless OR octet_length(event::text) > ${PAYLOAD_LIMIT_BYTES} THEN
    -- A key column renamed or dropped since the install (its key would read as null), or keys too big for
    -- NOTIFY: tell listeners to treat the whole table as changed.
    event := event - 'old' - 'new' || jsonb_build_object('overflow', true);
  END IF;
  PERFORM pg_notify(TG_ARGV[0], event::text);
  RETURN NULL;
END `;

/**
 * Row changes fire per row (so events carry keys); TRUNCATE can only fire per statement. ENABLE ALWAYS, so
 * that they fire in sessions with session_replication_role = replica too (bulk loaders, restores, logical
 * replication's apply workers), whose writes would otherwise leave cached entries stale.
 */
export function createTriggersSql(
  n: WatchNames,
  table: string,
  channel: string,
  keyColumns: string[],
): string[] {
  const rowArguments = [channel, ...keyColumns].map(quoteLiteral).join(', ');
  return [
    `CREATE TRIGGER "${n.rowTrigger}" AFTER INSERT OR UPDATE OR DELETE ON ${table}
  FOR EACH ROW EXECUTE FUNCTION ${n.functionName}(${rowArguments})`,
    `CREATE TRIGGER "${n.truncateTrigger}" AFTER TRUNCATE ON ${table}
  FOR EACH STATEMENT EXECUTE FUNCTION ${n.functionName}(${quoteLiteral(channel)})`,
    `ALTER TABLE ${table} ENABLE ALWAYS TRIGGER "${n.rowTrigger}", ENABLE ALWAYS TRIGGER "${n.truncateTrigger}"`,
  ];
}

export function dropTriggersSql(n: WatchNames, table: string): string[] {
  return [
    `DROP TRIGGER IF EXISTS "${n.rowTrigger}" ON ${table}`,
    `DROP TRIGGER IF EXISTS "${n.truncateTrigger}" ON ${table}`,
  ];
}

/**
 * How long the change may wait for a lock before it fails. Set after the installs' own locks, so it
 * bounds the wait for the table: while DDL waits for it, every later write to the table queues behind.
 */
export function lockTimeoutSql(ms: number): string {
  return `SET LOCAL lock_timeout = ${ms}`;
}

/** The schema's lock, then the installs' own, in the order every cache takes them. */
export function lockSql(n: WatchNames): string[] {
  return [
    `SELECT pg_advisory_xact_lock(${n.schemaLock[0]}, ${n.schemaLock[1]})`,
    `SELECT pg_advisory_xact_lock(${n.lock[0]}, ${n.lock[1]})`,
  ];
}

/** One script, as psql would run it; the statements in the same order the API runs them. */
export function asScript(statements: string[]): string {
  return `${statements.map((statement) => `${statement};`).join('\n')}\n`;
}
