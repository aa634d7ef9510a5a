import type pg from 'pg';
import { isConnectionFailure, SchemaError } from '../errors.js';
import { LOCK_CLASS, lockId, type SchemaNames, schemaLock } from './names.js';
import {
  alwaysFiringTriggers,
  CLEAR_MARKER,
  createSchemaUnlessExists,
  fireAlways,
  keyDigest,
  LIVE,
  NOW_MS,
  SILENT_SETTING,
  triggerChannel,
  unquote,
} from './sql.js';

/** The trigger's own condition, checked before any PL/pgSQL runs: the sweeper and clear delete in bulk, silently. */
const NOT_SILENT = `current_setting('${SILENT_SETTING}', true) IS DISTINCT FROM 'on'`;

export interface SchemaSettings {
  names: SchemaNames;
  unlogged: boolean;
  /** The channel the change trigger must notify on; undefined when this user needs no change events. */
  notifyChannel: string | undefined;
  /** Signs the notice a re-point sends, so the process that sent it can tell it from others'. */
  startId: string;
}

interface Migration {
  version: number;
  statements: (settings: SchemaSettings) => string[];
}

/**
 * Versioned, append-only. Each runs once, inside the migration transaction, under an advisory lock.
 * Functions are created SECURITY INVOKER except `next_version`, so a runtime role needs only DML on the table.
 */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    statements: ({ names: n, unlogged }) => {
      const sequenceLiteral = `'${n.versionSequence}'`;
      return [
        // The schema version is no secret, and a runtime role must read it to know the tables are ready.
        `GRANT SELECT ON ${n.meta} TO PUBLIC`,
        `CREATE SEQUENCE IF NOT EXISTS ${n.versionSequence}`,
        `CREATE ${unlogged ? 'UNLOGGED ' : ''}TABLE IF NOT EXISTS ${n.entries} (
          namespace  text   NOT NULL,
          key_hash   bytea  NOT NULL,
          key        text   NOT NULL,
          value      text   NOT NULL,
          expires_at bigint,
          version    bigint NOT NULL DEFAULT 0,
          PRIMARY KEY (namespace, key_hash)
        )`,
        `CREATE INDEX IF NOT EXISTS ${n.expiresIndex} ON ${n.entries} (expires_at) WHERE expires_at IS NOT NULL`,
        // Only this function touches the sequence, as its owner: writers need no privilege on it.
        `CREATE OR REPLACE FUNCTION ${n.nextVersion}() RETURNS bigint
          LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
          AS $fn$ SELECT nextval(${sequenceLiteral}::regclass) $fn$`,
        // A write that does not set the version itself (anyone's but this library's statements) gets a
        // fresh version and a digest that matches its key, from the triggers below.
        assignVersion(n),
        // The change event as JSON. A key too long for NOTIFY's 8000-byte payload travels as its hex digest
        // (kh); when even that does not fit (a huge namespace), the event asks every listener to flush.
        // Short keys skip the length check: escaping grows a byte at most six-fold.
        `CREATE OR REPLACE FUNCTION ${n.changePayload}(op text, ns text, key text, key_hash bytea, v bigint)
          RETURNS text LANGUAGE plpgsql STABLE AS $fn$
        DECLARE
          payload text := json_build_object('op', op, 'ns', ns, 'key', key, 'v', v)::text;
        BEGIN
          IF octet_length(ns) + octet_length(key) < 1300 OR octet_length(payload) <= 7999 THEN
            RETURN payload;
          END IF;
          payload := json_build_object('op', op, 'ns', ns, 'kh', encode(key_hash, 'hex'), 'v', v)::text;
          IF octet_length(payload) <= 7999 THEN
            RETURN payload;
          END IF;
          RETURN json_build_object('op', 'flush', 'v', v)::text;
        END $fn$`,
        `CREATE OR REPLACE FUNCTION ${n.notifyChange}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.namespace, OLD.key_hash) IS DISTINCT FROM (NEW.namespace, NEW.key_hash)) THEN
            PERFORM pg_notify(TG_ARGV[0], ${n.changePayload}('delete', OLD.namespace, OLD.key, OLD.key_hash, ${nextVersion(n)}));
          END IF;
          IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify(TG_ARGV[0], ${n.changePayload}('set', NEW.namespace, NEW.key, NEW.key_hash, NEW.version));
          END IF;
          RETURN NULL;
        END $fn$`,
        // clear_namespace and sweep_expired: see migrations 3 and 4, which define them as they are now.
        // This library's statements set version and digest themselves, so the triggers stay out of its way.
        `CREATE TRIGGER ${n.versionTrigger} BEFORE INSERT ON ${n.entries}
          FOR EACH ROW WHEN (NEW.version = 0) EXECUTE FUNCTION ${n.assignVersion}()`,
        `CREATE TRIGGER ${n.versionUpdateTrigger} BEFORE UPDATE ON ${n.entries}
          FOR EACH ROW WHEN (NEW.version = OLD.version) EXECUTE FUNCTION ${n.assignVersion}()`,
      ];
    },
  },
  {
    version: 2,
    // The tag index (src/store/table-invalidation-tags.ts). Always LOGGED: emptied by a crash while
    // LOGGED entries survived, it would let a tag eviction miss them. A row lives until its entry's expiry.
    statements: ({ names: n }) => [
      `CREATE TABLE IF NOT EXISTS ${n.tags} (
          tag        text   NOT NULL,
          namespace  text   NOT NULL,
          key_hash   bytea  NOT NULL,
          expires_at bigint,
          PRIMARY KEY (tag, namespace, key_hash)
        )`,
      `CREATE INDEX IF NOT EXISTS ${n.tagsExpiresIndex} ON ${n.tags} (expires_at) WHERE expires_at IS NOT NULL`,
    ],
  },
  {
    version: 3,
    // A clear in constant time: it writes the namespace's marker row (the empty digest, which no key
    // has) with a fresh version, and every read treats rows of that namespace with a version up to the
    // marker's as gone. The sweeper deletes them afterwards; the marker stays (see migration 6).
    statements: ({ names: n }) => [
      `CREATE INDEX IF NOT EXISTS ${n.clearMarkerIndex} ON ${n.entries} (namespace) WHERE key_hash = ${CLEAR_MARKER}`,
      // Both written as the last migration to change them has them: a database created now never runs an
      // older form, and one that did gets it replaced by that migration.
      clearNamespace(n),
      sweepExpired(n),
    ],
  },
  {
    version: 4,
    // The sweeper's last step again, now by ctid like the two before it: a clear() that raises a marker
    // while the sweeper waits on it gives the row a new ctid, so the re-check fails and the marker stays.
    // (Version 3's form re-checked only the marker's row, with its old snapshot of the rows under it, and
    // could delete a marker raised after rows it hides were written: the clear was undone.)
    statements: ({ names: n }) => [sweepExpired(n)],
  },
  {
    version: 5,
    // A clear's event goes to the channel the trigger notifies, not to the caller's: while processes with
    // another notifyChannel run (a rolling change of the option), the ones the trigger serves still hear it.
    statements: ({ names: n }) => [clearNamespace(n)],
  },
  {
    version: 6,
    // Clear markers are kept: the sweeper deleted one once nothing it could see was left under it, and a
    // write that drew its version before the clear but committed after that came back. The sweeper also
    // skips rows writers hold (it could deadlock with setMany), and the version trigger leaves markers and
    // the rows they hide alone (an UPDATE of anyone's could undo a clear).
    statements: ({ names: n }) => [
      // The markers the sweeper still looks under, so that it does not read every marker ever kept.
      `CREATE INDEX IF NOT EXISTS ${n.unsettledMarkerIndex} ON ${n.entries} (namespace)
         WHERE key_hash = ${CLEAR_MARKER} AND value <> '${SETTLED}'`,
      clearNamespace(n),
      sweepExpired(n),
      assignVersion(n),
    ],
  },
  {
    version: 7,
    // TRUNCATE fires no row trigger: without this, every L1 would keep what a TRUNCATE of the table removed.
    // One flush event per TRUNCATE, on the channel the row trigger notifies now (none without one), so
    // re-pointing that trigger needs nothing here.
    statements: ({ names: n }) => [
      `CREATE OR REPLACE FUNCTION ${n.notifyTruncate}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
          channel text := ${triggerChannel(n)};
        BEGIN
          IF channel IS NOT NULL THEN
            PERFORM pg_notify(channel, json_build_object('op', 'flush', 'v', ${nextVersion(n)})::text);
          END IF;
          RETURN NULL;
        END $fn$`,
      `CREATE TRIGGER ${n.truncateTrigger} AFTER TRUNCATE ON ${n.entries}
         FOR EACH STATEMENT EXECUTE FUNCTION ${n.notifyTruncate}()`,
    ],
  },
  {
    version: 8,
    // Merely enabled triggers do not fire in a session with session_replication_role = replica (bulk loaders,
    // restores, logical replication's apply workers): such a write would get no version and send no event.
    // A change trigger that is disabled stays so here: the start that re-enables it must tell the channel.
    statements: ({ names: n }) => [
      fireAlways(n, [n.versionTrigger, n.versionUpdateTrigger, n.truncateTrigger]),
      `DO $do$ BEGIN
         IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('${n.entries}')
                      AND tgname = '${unquote(n.notifyTrigger)}' AND tgenabled = 'O') THEN
           ${fireAlways(n, [n.notifyTrigger])};
         END IF;
       END $do$`,
    ],
  },
  {
    version: 9,
    // deleteMany by primary-key probes, locking in digest order. As one statement, `key_hash = ANY(...)`, a
    // table without statistics (a new one, until autovacuum analyzes it) was planned as a scan of the whole
    // namespace, which also locked the rows in the order they lie in: it could deadlock with a setMany, which
    // locks them in digest order. A single statement that probes cannot delete a row changed since it began.
    statements: ({ names: n }) => [
      deleteKeys(n),
      sameExecuteGrants(n.clearNamespace, 'text, text', n.deleteKeys, 'text, text[]'),
    ],
  },
  {
    version: 10,
    // cached()'s invalidate(): a delete whose event is sent even when no row was there, after any insert of
    // the key in flight when it began.
    statements: ({ names: n }) => [
      deleteAnnounced(n),
      sameExecuteGrants(n.clearNamespace, 'text, text', n.deleteAnnounced, 'text, text'),
    ],
  },
];

/**
 * Grants EXECUTE on a new function to whoever may execute an existing one: a site that revoked it from PUBLIC
 * and granted it to its runtime role must not find a call of the new function refused after an upgrade.
 */
function sameExecuteGrants(from: string, fromArgs: string, to: string, toArgs: string): string {
  return `DO $do$
    DECLARE
      grantee oid;
    BEGIN
      FOR grantee IN
        SELECT a.grantee FROM pg_proc p, aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
        WHERE p.oid = '${from}(${fromArgs})'::regprocedure AND a.privilege_type = 'EXECUTE'
      LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION ${to}(${toArgs}) TO %s',
          CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE grantee::regrole::text END);
      END LOOP;
    END $do$`;
}

/**
 * `delete_keys` as of migration 9: the rows deleted, with whether each was live (not expired, not cleared).
 * First one statement locks the rows, probing the primary key once per key (LIMIT 1 keeps each probe one),
 * in digest order; then a second deletes them by row address. The second sees the rows as locked, even
 * those another writer changed in between: in a function, each statement takes a new snapshot.
 */
function deleteKeys(n: SchemaNames): string {
  return `CREATE OR REPLACE FUNCTION ${n.deleteKeys}(ns text, keys text[])
    RETURNS TABLE (key text, version bigint, live boolean) LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
    #variable_conflict use_column
    DECLARE
      locked tid[] := ARRAY(
        SELECT r.ctid FROM (SELECT DISTINCT ${keyDigest('k')} AS digest FROM unnest(keys) AS k ORDER BY 1) d,
        LATERAL (SELECT ctid FROM ${n.entries} WHERE namespace = ns AND key_hash = d.digest LIMIT 1 FOR UPDATE) r);
      cleared bigint := COALESCE((SELECT m.version FROM ${n.entries} m
                                  WHERE m.namespace = ns AND m.key_hash = ${CLEAR_MARKER}), 0);
    BEGIN
      -- Without enable_seqscan = off, PostgreSQL reads the whole table instead once the rows are a sizeable
      -- share of it (its cost model prices a fetch by address as a read from disk; a cache's rows are in memory).
      RETURN QUERY DELETE FROM ${n.entries} e WHERE e.ctid = ANY (locked)
        RETURNING e.key, e.version, ${LIVE} AND e.version > cleared;
    END $fn$`;
}

/**
 * `delete_announced` as of migration 10: deletes the key's row and returns it, as `delete` does; with no row,
 * its delete event is sent all the same, by a row of its own inserted silently under the key and deleted.
 * That insert waits for one of the key in flight (a write whose statement began before this one, which this
 * one could not see): such a write commits first, and the delete, seeing it now, takes it instead. So
 * whoever hears this event has heard every write of the key committed before it.
 */
function deleteAnnounced(n: SchemaNames): string {
  return `CREATE OR REPLACE FUNCTION ${n.deleteAnnounced}(ns text, k text)
    RETURNS TABLE (key text, version bigint, live boolean) LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
      digest bytea := ${keyDigest('k')};
      silent_before text := COALESCE(current_setting('${SILENT_SETTING}', true), '');
      inserted integer;
    BEGIN
      -- Under READ COMMITTED each statement takes a new snapshot: a write committed meanwhile is seen by the
      -- next. Under REPEATABLE READ the insert's wait ends in a serialization failure: the caller runs it again.
      FOR attempt IN 1..5 LOOP
        RETURN QUERY DELETE FROM ${n.entries} e WHERE e.namespace = ns AND e.key_hash = digest
          RETURNING e.key, e.version, ${LIVE} AND e.version > COALESCE((SELECT m.version FROM ${n.entries} m
            WHERE m.namespace = ns AND m.key_hash = ${CLEAR_MARKER}), 0);
        IF FOUND THEN
          RETURN;
        END IF;
        PERFORM set_config('${SILENT_SETTING}', 'on', true);
        INSERT INTO ${n.entries} (namespace, key_hash, key, value, version)
          VALUES (ns, digest, k, '', ${nextVersion(n)})
          ON CONFLICT (namespace, key_hash) DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        PERFORM set_config('${SILENT_SETTING}', silent_before, true);
        IF inserted > 0 THEN
          -- Its trigger sends the event, to wherever the table's events go.
          DELETE FROM ${n.entries} e WHERE e.namespace = ns AND e.key_hash = digest;
          RETURN;
        END IF;
      END LOOP;
    END $fn$`;
}

/**
 * `clear_namespace` as of migration 6 (its event to the trigger's channel since 5; re-arms a settled marker; leaves
 * the caller's `postgres_cache.silent` as it found it).
 */
function clearNamespace(n: SchemaNames): string {
  // Plain SQL, not PL/pgSQL: a clear is rare, so it mostly runs on a connection that has not
  // compiled it yet, and compiling a PL/pgSQL function costs more than the clear itself.
  return `CREATE OR REPLACE FUNCTION ${n.clearNamespace}(ns text, channel text) RETURNS bigint LANGUAGE sql AS $fn$
    SELECT set_config('${SILENT_SETTING}_before', COALESCE(current_setting('${SILENT_SETTING}', true), ''), true);
    SELECT set_config('${SILENT_SETTING}', 'on', true);
    INSERT INTO ${n.entries} (namespace, key_hash, key, value, version)
    VALUES (ns, ${CLEAR_MARKER}, '', '', ${nextVersion(n)})
    ON CONFLICT (namespace, key_hash) DO UPDATE SET version = ${nextVersion(n)}, value = '';
    SELECT set_config('${SILENT_SETTING}', current_setting('${SILENT_SETTING}_before'), true);
    SELECT pg_notify(COALESCE(${triggerChannel(n)}, channel),
                     CASE WHEN octet_length(p.clear) <= 7999 THEN p.clear ELSE p.flush END)
    FROM (SELECT json_build_object('op', 'clear', 'ns', ns, 'v', m.version)::text AS clear,
                 json_build_object('op', 'flush', 'v', m.version)::text AS flush
          FROM ${n.entries} m WHERE m.namespace = ns AND m.key_hash = ${CLEAR_MARKER}) p;
    SELECT version FROM ${n.entries} WHERE namespace = ns AND key_hash = ${CLEAR_MARKER};
  $fn$`;
}

/**
 * `assign_version` as of migration 6. A clear marker keeps its version, namespace and digest (else an UPDATE
 * would turn it into a plain row and undo the clear), and an UPDATE that does not change the value of a row
 * a clear hid keeps it hidden (else it would get a version above the marker's and come back).
 */
function assignVersion(n: SchemaNames): string {
  return `CREATE OR REPLACE FUNCTION ${n.assignVersion}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF OLD.key_hash = ${CLEAR_MARKER} THEN
          NEW.key_hash := OLD.key_hash;
          NEW.namespace := OLD.namespace;
          RETURN NEW;
        END IF;
        -- A new value is a new write; any other change to a row a clear hid leaves it hidden (its version).
        IF NEW.value IS NOT DISTINCT FROM OLD.value AND OLD.version <= COALESCE(
             (SELECT m.version FROM ${n.entries} m
               WHERE m.namespace = OLD.namespace AND m.key_hash = ${CLEAR_MARKER}), 0) THEN
          NEW.key_hash := ${keyDigest('NEW.key')};
          RETURN NEW;
        END IF;
      END IF;
      NEW.version := ${nextVersion(n)};
      NEW.key_hash := ${keyDigest('NEW.key')};
      RETURN NEW;
    END $fn$`;
}

/**
 * `sweep_expired` as of migration 6: one sweeper at a time across the cluster (-1 when another holds the
 * lock). It never waits on a row a writer holds (SKIP LOCKED: left for the next run), so it cannot deadlock
 * with setMany, which locks in digest order where the sweeper goes by ctid. It never deletes a clear marker:
 * a write that drew its version before the clear may commit at any later time, and only the marker keeps
 * it hidden. A marker with nothing left under it is marked settled, so that step 2 stops looking under it;
 * a late write under a settled marker stays hidden until it expires or the namespace is cleared again.
 */
function sweepExpired(n: SchemaNames): string {
  return `CREATE OR REPLACE FUNCTION ${n.sweepExpired}(batch integer) RETURNS integer LANGUAGE plpgsql AS $fn$
    DECLARE
      removed integer;
      more integer;
      silent_before text := COALESCE(current_setting('${SILENT_SETTING}', true), '');
    BEGIN
      IF NOT pg_try_advisory_xact_lock(${LOCK_CLASS.sweep}, ${lockId(n.identity)}) THEN
        RETURN -1;
      END IF;
      PERFORM set_config('${SILENT_SETTING}', 'on', true);
      DELETE FROM ${n.entries}
      WHERE ctid = ANY (ARRAY(
          SELECT ctid FROM ${n.entries}
          WHERE expires_at <= ${NOW_MS} AND key_hash <> ${CLEAR_MARKER}
          LIMIT batch FOR UPDATE SKIP LOCKED))
        AND NOT ${LIVE};
      GET DIAGNOSTICS removed = ROW_COUNT;
      IF removed < batch THEN
        DELETE FROM ${n.entries} e
        WHERE e.ctid = ANY (ARRAY(
            SELECT r.ctid FROM ${n.entries} m
            JOIN ${n.entries} r ON r.namespace = m.namespace AND r.key_hash <> ${CLEAR_MARKER} AND r.version <= m.version
            WHERE m.key_hash = ${CLEAR_MARKER} AND m.value <> '${SETTLED}'
            LIMIT batch - removed FOR UPDATE OF r SKIP LOCKED))
          AND e.version <= (SELECT m.version FROM ${n.entries} m
                            WHERE m.namespace = e.namespace AND m.key_hash = ${CLEAR_MARKER});
        GET DIAGNOSTICS more = ROW_COUNT;
        removed := removed + more;
      END IF;
      IF removed < batch THEN
        UPDATE ${n.entries} SET value = '${SETTLED}'
        WHERE ctid = ANY (ARRAY(
            SELECT m.ctid FROM ${n.entries} m
            WHERE m.key_hash = ${CLEAR_MARKER} AND m.value <> '${SETTLED}' AND NOT EXISTS (
              SELECT 1 FROM ${n.entries} r
              WHERE r.namespace = m.namespace AND r.key_hash <> ${CLEAR_MARKER} AND r.version <= m.version)
            FOR UPDATE SKIP LOCKED))
          AND key_hash = ${CLEAR_MARKER};
      END IF;
      PERFORM set_config('${SILENT_SETTING}', silent_before, true);
      RETURN removed;
    END $fn$`;
}

/** A clear marker's value once nothing is left under it; a new clear of the namespace re-arms it (''). */
const SETTLED = 'settled';

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

function nextVersion(n: SchemaNames): string {
  return `${n.nextVersion}()`;
}

interface SchemaState {
  version: number;
  unlogged: boolean | undefined;
  /** Where the change trigger sends its events; undefined without one. */
  notifyChannel: string | undefined;
  /** Whether every trigger on the table fires in every session (see `triggerChannel`). */
  alwaysFiring: boolean;
}

type Run = <Row extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<Row>>;

/**
 * Every statement with a client-side deadline: a server that stops answering (or a caller's pool with no
 * server-side statement_timeout) must not hold start-up, and `disconnect()` behind it, until TCP gives up.
 */
function withDeadline(client: pg.ClientBase, queryTimeout: number): Run {
  return (text, values) => client.query({ text, values, query_timeout: queryTimeout } as pg.QueryConfig);
}

async function readSchemaState(run: Run, n: SchemaNames): Promise<SchemaState> {
  const { rows } = await run<{
    has_meta: boolean;
    persistence: string | null;
    channel: string | null;
    always_firing: boolean;
  }>(
    `SELECT to_regclass($1) IS NOT NULL AS has_meta,
            (SELECT relpersistence FROM pg_class WHERE oid = to_regclass($2)) AS persistence,
            ${triggerChannel(n)} AS channel,
            ${triggerChannel(n, true)} IS NOT NULL AS always_firing`,
    [n.meta, n.entries],
  );
  const state = rows[0];
  let version = 0;
  if (state?.has_meta) {
    const meta = await run<{ value: string }>(`SELECT value FROM ${n.meta} WHERE name = 'schema_version'`);
    version = Number(meta.rows[0]?.value ?? 0);
  }
  return {
    version,
    unlogged: state?.persistence == null ? undefined : state.persistence === 'u',
    notifyChannel: state?.channel ?? undefined,
    alwaysFiring: state?.always_firing === true,
  };
}

/**
 * The channel is the trigger's argument: changing the option re-points the trigger, no hand-written SQL.
 * Processes still listening on the old channel would hear nothing more and keep serving their L1, so both
 * channels are told, on commit, to check where the trigger points now (see `RepointNotice`). The same
 * repairs a trigger that did not fire in every session: changes made meanwhile may have reached no L1.
 */
async function repointTrigger(
  run: Run,
  n: SchemaNames,
  from: string | undefined,
  to: string,
  by: string,
): Promise<void> {
  await run(`DROP TRIGGER IF EXISTS ${n.notifyTrigger} ON ${n.entries}`);
  await run(
    `CREATE TRIGGER ${n.notifyTrigger} AFTER INSERT OR UPDATE OR DELETE ON ${n.entries}
     FOR EACH ROW WHEN (${NOT_SILENT}) EXECUTE FUNCTION ${n.notifyChange}('${to}')`,
  );
  await run(fireAlways(n, alwaysFiringTriggers(n)));
  const payload = JSON.stringify({ op: 'repoint', to, by });
  for (const channel of new Set(from === undefined ? [to] : [from, to])) {
    await run('SELECT pg_notify($1, $2)', [channel, payload]);
  }
}

function isCurrent(state: SchemaState, settings: SchemaSettings): boolean {
  return (
    state.version >= SCHEMA_VERSION &&
    state.unlogged === settings.unlogged &&
    (settings.notifyChannel === undefined || servesChannel(state, settings.notifyChannel))
  );
}

function servesChannel(state: SchemaState, channel: string): boolean {
  return state.notifyChannel === channel && state.alwaysFiring;
}

function describeMismatch(state: SchemaState, settings: SchemaSettings): string {
  if (state.version < SCHEMA_VERSION) {
    return `schema version is ${state.version}, this library needs ${SCHEMA_VERSION}`;
  }
  if (state.unlogged !== settings.unlogged) return `the table is ${state.unlogged ? '' : 'not '}UNLOGGED`;
  if (state.notifyChannel === undefined) return 'the change trigger is missing';
  if (state.notifyChannel !== settings.notifyChannel) {
    return `the trigger notifies ${JSON.stringify(state.notifyChannel)}, not ${JSON.stringify(settings.notifyChannel)}`;
  }
  return 'a trigger on the table is disabled or not ENABLE ALWAYS';
}

/**
 * Brings the cache's objects up to date. Cheap when nothing is to do (one read, no lock); otherwise
 * serialised across processes with transaction-scoped advisory locks, so N processes may start at once.
 * Every statement fails after `queryTimeout` ms without an answer; the caller must then destroy the
 * connection (`release(true)`), whose stalled statement may still be running.
 */
export async function ensureSchema(
  client: pg.ClientBase,
  settings: SchemaSettings,
  migrate: boolean,
  queryTimeout: number,
): Promise<void> {
  const n = settings.names;
  const run = withDeadline(client, queryTimeout);
  const current = await readSchemaState(run, n);
  if (isCurrent(current, settings)) return;
  // Triggers that do not fire in every session leave the tables usable: each cache's own check then keeps
  // its L1 off and says why. A restore that re-enabled them for ordinary sessions only must not stop starts.
  const usable = onlyFiringDiffers(current, settings);
  const notReady = (detail = '') =>
    new SchemaError(
      `cache tables in ${n.identity} are not ready (${describeMismatch(current, settings)})${detail}; run initDb() (PostgresCache.initDb or PostgresAdapter.initDb, with the same options) with a role that may run DDL`,
    );
  if (!migrate) {
    if (usable) return;
    throw notReady();
  }
  await run('BEGIN');
  try {
    // The schema's lock first, then the cache's, in that order everywhere: caches with other prefixes
    // may be creating the same schema right now, and CREATE SCHEMA IF NOT EXISTS does not wait for them.
    await run('SELECT pg_advisory_xact_lock($1, $2)', schemaLock(n.schema));
    await run('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS.migrate, lockId(n.identity)]);
    await run(createSchemaUnlessExists(n.schema));
    await run(`CREATE TABLE IF NOT EXISTS ${n.meta} (name text PRIMARY KEY, value text NOT NULL)`);
    const state = await readSchemaState(run, n);
    for (const migration of MIGRATIONS) {
      if (migration.version <= state.version) continue;
      for (const statement of migration.statements(settings)) await run(statement);
      await run(
        `INSERT INTO ${n.meta} (name, value) VALUES ('schema_version', $1)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
        [String(migration.version)],
      );
    }
    const migrated = await readSchemaState(run, n);
    if (migrated.unlogged !== settings.unlogged) {
      await run(`ALTER TABLE ${n.entries} SET ${settings.unlogged ? 'UNLOGGED' : 'LOGGED'}`);
    }
    if (settings.notifyChannel !== undefined && !servesChannel(migrated, settings.notifyChannel)) {
      await repointTrigger(run, n, migrated.notifyChannel, settings.notifyChannel, settings.startId);
    }
    await run('COMMIT');
  } catch (error) {
    // A ROLLBACK would queue behind a statement that timed out; the destroyed connection rolls back anyway.
    if (!isConnectionFailure(error)) await run('ROLLBACK').catch(() => undefined);
    if ((error as { code?: unknown }).code !== INSUFFICIENT_PRIVILEGE) throw error;
    if (usable) return;
    throw notReady(`, and this role may not change them: ${(error as Error).message}`);
  }
}

const INSUFFICIENT_PRIVILEGE = '42501';

/** Everything is current but that some trigger is disabled or merely enabled: reads and writes work. */
function onlyFiringDiffers(state: SchemaState, settings: SchemaSettings): boolean {
  return (
    state.version >= SCHEMA_VERSION &&
    state.unlogged === settings.unlogged &&
    settings.notifyChannel !== undefined &&
    state.notifyChannel === settings.notifyChannel &&
    !state.alwaysFiring
  );
}
