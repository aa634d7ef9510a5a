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
