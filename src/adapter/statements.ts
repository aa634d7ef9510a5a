import { createHash } from 'node:crypto';
import type { SchemaNames } from './names.js';
import { CLEAR_MARKER, keyDigest, LIVE, NOW_MS, TTL_LEFT, triggerChannel, triggerStamp } from './sql.js';

/** A statement. With a name, `pg` parses and plans it once per connection, then only binds. */
export interface Statement {
  name?: string;
  text: string;
}

function named(text: string): Statement {
  const compact = text.replace(/\s+/g, ' ').trim();
  return { name: `pgcache_${createHash('sha1').update(compact).digest('hex').slice(0, 20)}`, text: compact };
}

export type Statements = ReturnType<typeof buildStatements>;

/** Every statement the adapter runs against one cache table. $1 is always the namespace. */
export function buildStatements(n: SchemaNames) {
  // Rows of namespace $1 written before its last clear are gone, whether or not swept yet.
  const visible = (alias = '') =>
    `${LIVE} AND ${alias}version > COALESCE((SELECT m.version FROM ${n.entries} m
      WHERE m.namespace = $1 AND m.key_hash = ${CLEAR_MARKER}), 0)`;
  // One primary-key probe per key of k, whatever the statistics say. As `key_hash = ANY(...)`, a fresh table
  // without statistics was planned as a scan of the whole namespace; the LIMIT keeps the subquery a probe.
  const probe = (columns: string) => `LATERAL (SELECT ${columns} FROM ${n.entries}
      WHERE namespace = $1 AND key_hash = ${keyDigest('k.key')} AND ${visible()} LIMIT 1)`;
  // The version is drawn again once the row lock is held, so versions grow in commit order for each key.
  const upsertTail = `ON CONFLICT (namespace, key_hash)
    DO UPDATE SET key = EXCLUDED.key, value = EXCLUDED.value, expires_at = EXCLUDED.expires_at,
      version = ${n.nextVersion}()`;
  return {
    getValue: named(`SELECT value FROM ${n.entries}
      WHERE namespace = $1 AND key_hash = ${keyDigest('$2')} AND ${visible()}`),
    get: named(`SELECT value, version, ${TTL_LEFT} AS ttl_left FROM ${n.entries}
      WHERE namespace = $1 AND key_hash = ${keyDigest('$2')} AND ${visible()}`),
    getMany: named(`SELECT e.key, e.value, e.version, e.ttl_left FROM unnest($2::text[]) AS k(key),
      ${probe(`key, value, version, ${TTL_LEFT} AS ttl_left`)} e`),
    // The row's version whether or not it has expired, and the namespace's last clear: what changes when, and
    // only when, the key is written, deleted or cleared. And whether that row was dead (expired, or hidden by the
    // clear) already: it stays dead, so the sweeper's removal of it changes nothing a reader could see.
    changeStamp: named(`SELECT
      (SELECT version FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${keyDigest('$2')}) AS version,
      (SELECT version FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${CLEAR_MARKER}) AS cleared,
      EXISTS (SELECT 1 FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${keyDigest('$2')}
        AND NOT (${visible()})) AS dead`),
    has: named(
      `SELECT 1 FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${keyDigest('$2')} AND ${visible()}`,
    ),
    hasMany: named(`SELECT e.key FROM unnest($2::text[]) AS k(key), ${probe('key')} e`),
    set: named(`INSERT INTO ${n.entries} (namespace, key_hash, key, value, expires_at, version)
      VALUES ($1, ${keyDigest('$2')}, $2, $3, ${NOW_MS} + $4::bigint, ${n.nextVersion}())
      ${upsertTail} RETURNING version`),
    // As set, only while the key's row and its namespace's clear marker still have the versions $5 and $6 (NULL:
    // none), as the statement's snapshot sees them: a write, delete or clear committed since then wins. A row that
    // was dead when stamped ($7) may have been swept meanwhile: no row then is no change. A row that comes or
    // changes while it runs is caught by the conflict arm, which sees the row as it is once locked; a delete or
    // clear still in flight as it begins is not (the caller hears its own process's).
    setIfUnchanged:
      named(`INSERT INTO ${n.entries} AS e (namespace, key_hash, key, value, expires_at, version)
      SELECT $1, ${keyDigest('$2')}, $2, $3, ${NOW_MS} + $4::bigint, ${n.nextVersion}()
      FROM (SELECT (SELECT version FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${keyDigest('$2')})
        AS version) AS now_held
      WHERE (now_held.version IS NOT DISTINCT FROM $5::bigint OR ($7::boolean AND now_held.version IS NULL))
        AND (SELECT version FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${CLEAR_MARKER})
              IS NOT DISTINCT FROM $6::bigint
      ${upsertTail} WHERE e.version IS NOT DISTINCT FROM $5::bigint RETURNING version`),
    // Rows are locked in digest order, the same in every statement, so two batches that share keys queue
    // behind each other instead of deadlocking.
    setMany: named(`INSERT INTO ${n.entries} (namespace, key_hash, key, value, expires_at, version)
      SELECT $1, ${keyDigest('u.key')}, u.key, u.value, ${NOW_MS} + u.ttl, ${n.nextVersion}()
      FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(key, value, ttl)
      ORDER BY 2
      ${upsertTail} RETURNING key, version`),
    delete: named(`DELETE FROM ${n.entries} WHERE namespace = $1 AND key_hash = ${keyDigest('$2')}
      RETURNING key, version, (${visible()}) AS live`),
    // As delete, only while the row has version $3.
    deleteVersion: named(`DELETE FROM ${n.entries}
      WHERE namespace = $1 AND key_hash = ${keyDigest('$2')} AND version = $3::bigint
      RETURNING key, version, (${visible()}) AS live`),
    // As delete, and a key with no row gets a delete event all the same (see delete_announced).
    deleteAnnounced: named(`SELECT key, version, live FROM ${n.deleteAnnounced}($1, $2)`),
    deleteMany: named(`SELECT key, version, live FROM ${n.deleteKeys}($1, $2::text[])`),
    clear: named(`SELECT ${n.clearNamespace}($1, $2) AS version`),
    iterate: named(`SELECT key, value, key_hash FROM ${n.entries}
      WHERE namespace = $1 AND key_hash > $2 AND ${visible()}
      ORDER BY key_hash LIMIT $3`),
    sweep: named(`SELECT ${n.sweepExpired}($1) AS removed`),
    // The one statement without a namespace: where the change trigger sends events now, and a stamp of the
    // triggers that changes whenever one is altered.
    triggerState: named(`SELECT ${triggerChannel(n, true)} AS channel, ${triggerStamp(n)} AS stamp`),
  };
}
