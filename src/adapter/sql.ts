import type { SchemaNames } from './names.js';

/** Milliseconds since the epoch by the database's clock: every process measures expiry against one clock. */
export const NOW_MS = '(extract(epoch from statement_timestamp()) * 1000)::bigint';

/** The digest that keys the primary key: btree rows cannot hold keys past ~2.7 KB, a 32-byte digest always fits. */
export const keyDigest = (expression: string) => `sha256(convert_to(${expression}, 'UTF8'))`;

/** Rows whose expiry has not passed. */
export const LIVE = `(expires_at IS NULL OR expires_at > ${NOW_MS})`;

/** Remaining lifetime in ms (NULL for no expiry), so callers never compare against their own clock. */
export const TTL_LEFT = `CASE WHEN expires_at IS NULL THEN NULL ELSE expires_at - ${NOW_MS} END`;

/** The session setting that keeps the notify trigger quiet (used by clear and the sweeper). */
export const SILENT_SETTING = 'postgres_cache.silent';

/** The digest of a namespace's clear marker: empty, which no SHA-256 of a key can be. */
export const CLEAR_MARKER = `'\\x'::bytea`;

/**
 * The channel the notify trigger passes to its function, read from the catalog now: NULL without a trigger,
 * and with `onlyIfAlwaysFiring` also unless that trigger and the ones that version rows and announce a
 * TRUNCATE all fire in every session ('A', ENABLE ALWAYS). Merely enabled ('O') triggers stay quiet in a
 * session with session_replication_role = replica (bulk loaders, restores, logical replication's apply
 * workers), and a disabled one ('D') everywhere: either way some change would reach no L1.
 * pg_trigger.tgargs holds each argument followed by a NUL byte, which `encode(…, 'escape')` writes as `\000`.
 */
export const triggerChannel = (n: SchemaNames, onlyIfAlwaysFiring = false) =>
  `(SELECT split_part(encode(t.tgargs, 'escape'), E'\\\\000', 1) FROM pg_trigger t
     WHERE t.tgrelid = to_regclass('${n.entries}') AND t.tgname = '${unquote(n.notifyTrigger)}'${
       onlyIfAlwaysFiring ? ` AND ${allFireAlways(n)}` : ''
     })`;

/**
 * A stamp of the cache table's triggers as they are now: the transaction ids that last wrote their catalog
 * rows. Disabling a trigger and enabling it again changes it, though the two answers around it look alike.
 */
export const triggerStamp = (n: SchemaNames) =>
  `(SELECT string_agg(t.xmin::text, ',' ORDER BY t.tgname) FROM pg_trigger t
     WHERE t.tgrelid = to_regclass('${n.entries}') AND t.tgname IN (${triggerNameList(n)}))`;

/** Every trigger on the cache table: all must fire in every session, or a write could change a row unseen. */
export const alwaysFiringTriggers = (n: SchemaNames) => [
  n.versionTrigger,
  n.versionUpdateTrigger,
  n.notifyTrigger,
  n.truncateTrigger,
];

/** Whether every trigger on the table of pg_trigger row `t` is ENABLE ALWAYS ('A'). */
const allFireAlways = (n: SchemaNames) => {
  return `(SELECT count(*) FROM pg_trigger o WHERE o.tgrelid = t.tgrelid AND o.tgenabled = 'A'
             AND o.tgname IN (${triggerNameList(n)})) = ${alwaysFiringTriggers(n).length}`;
};

/** The names of `alwaysFiringTriggers` as a list of string literals. */
const triggerNameList = (n: SchemaNames) =>
  alwaysFiringTriggers(n)
    .map((name) => `'${unquote(name)}'`)
    .join(', ');

/** `ALTER TABLE … ENABLE ALWAYS TRIGGER` for each of `triggers` (quoted names of triggers on the cache table). */
export const fireAlways = (n: SchemaNames, triggers: string[]) =>
  `ALTER TABLE ${n.entries} ${triggers.map((name) => `ENABLE ALWAYS TRIGGER ${name}`).join(', ')}`;

/** A quoted plain identifier without its quotes, for a string literal (plain identifiers hold no quote). */
export const unquote = (quoted: string) => quoted.slice(1, -1);

/**
 * Creates a schema unless it exists; run with the schema's lock held (`schemaLock`). It looks in pg_namespace
 * with a snapshot of its own: CREATE SCHEMA IF NOT EXISTS trusts the session's catalog cache, which may still
 * remember "no such schema" from before the lock, when the creator we waited for had not committed yet.
 * @param quotedSchema a quoted plain identifier, as `SchemaNames.schema` has it.
 */
export const createSchemaUnlessExists = (quotedSchema: string) =>
  `DO $do$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = '${unquote(quotedSchema)}') THEN
       CREATE SCHEMA ${quotedSchema};
     END IF;
   END $do$`;
