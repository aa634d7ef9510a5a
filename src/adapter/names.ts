import { createHash } from 'node:crypto';
import { assertIdentifier, quoteIdentifier } from './identifiers.js';

/** The quoted names of every database object one cache (schema + prefix) owns. */
export interface SchemaNames {
  schema: string;
  /** Unquoted `schema.table` identity, for hashing and messages. */
  identity: string;
  entries: string;
  meta: string;
  versionSequence: string;
  nextVersion: string;
  assignVersion: string;
  notifyChange: string;
  notifyTruncate: string;
  changePayload: string;
  clearNamespace: string;
  sweepExpired: string;
  deleteKeys: string;
  deleteAnnounced: string;
  versionTrigger: string;
  versionUpdateTrigger: string;
  notifyTrigger: string;
  truncateTrigger: string;
  expiresIndex: string;
  clearMarkerIndex: string;
  unsettledMarkerIndex: string;
  tags: string;
  tagsExpiresIndex: string;
}

export function schemaNames(schema: string, prefix: string): SchemaNames {
  const q = (suffix: string) => {
    const name = `${prefix}${suffix}`;
    assertIdentifier(name, `table prefix ${JSON.stringify(prefix)} makes a name that`);
    return quoteIdentifier(name, 'name');
  };
  const s = quoteIdentifier(schema, 'schema');
  return {
    schema: s,
    identity: `${schema}.${prefix}entries`,
    entries: `${s}.${q('entries')}`,
    meta: `${s}.${q('meta')}`,
    versionSequence: `${s}.${q('version_seq')}`,
    nextVersion: `${s}.${q('next_version')}`,
    assignVersion: `${s}.${q('assign_version')}`,
    notifyChange: `${s}.${q('notify_change')}`,
    notifyTruncate: `${s}.${q('notify_truncate')}`,
    changePayload: `${s}.${q('change_payload')}`,
    clearNamespace: `${s}.${q('clear_namespace')}`,
    sweepExpired: `${s}.${q('sweep_expired')}`,
    deleteKeys: `${s}.${q('delete_keys')}`,
    deleteAnnounced: `${s}.${q('delete_announced')}`,
    versionTrigger: q('version_trigger'),
    versionUpdateTrigger: q('version_update_trigger'),
    notifyTrigger: q('notify_trigger'),
    truncateTrigger: q('truncate_trigger'),
    expiresIndex: q('entries_expires_idx'),
    clearMarkerIndex: q('entries_clear_marker_idx'),
    unsettledMarkerIndex: q('entries_unsettled_idx'),
    tags: `${s}.${q('tags')}`,
    tagsExpiresIndex: q('tags_expires_idx'),
  };
}

/** Advisory locks in the two-int form: the first int is this library's class, so it stays apart from app locks. */
export const LOCK_CLASS = {
  migrate: 0x70676301,
  sweep: 0x70676302,
  fill: 0x70676303,
  /** Taken before `migrate` by every cache migrating in a schema: its caches may be creating it together. */
  schema: 0x70676304,
} as const;

/**
 * The lock every creator of a schema's objects takes first: caches and table watches may create it together.
 * @param quotedSchema as `SchemaNames.schema` has it.
 */
export function schemaLock(quotedSchema: string): [number, number] {
  return [LOCK_CLASS.schema, lockId(quotedSchema)];
}

/** A 32-bit signed integer from a string, for the second half of a two-int advisory lock. */
export function lockId(text: string): number {
  return createHash('sha256').update(text).digest().readInt32BE(0);
}

/** Two signed 32-bit halves of a 64-bit hash, for a two-int advisory lock keyed by an arbitrary string. */
export function lockPair(text: string): [number, number] {
  const digest = createHash('sha256').update(text).digest();
  return [digest.readInt32BE(0), digest.readInt32BE(4)];
}
