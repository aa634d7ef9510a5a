import type { StatementValues } from '../adapter/postgres-adapter.js';
import type { Claim } from '../adapter/queue-claims.js';
import { keyDigest, NOW_MS } from '../adapter/sql.js';
import {
  assertStorableKey,
  assertStorableValue,
  normalizeTtl,
  whyUnstorableKey,
} from '../adapter/validation.js';
import { ttlAtRun } from '../adapter/writes.js';
import { InvalidKeyError, toCacheError } from '../errors.js';
import { reportError } from '../report-error.js';
import { evictionsSent, forgetDeletedRows, ownWrite, type PostgresCache } from './postgres-cache.js';

/** A btree row holds about 2.7 KB; tags are index keys, so they are held well below that. */
const MAX_TAG_BYTES = 1024;
/** Expired tag rows are pruned at most this often per process, after a tagged write. */
const PRUNE_EVERY_MS = 30_000;
const PRUNE_BATCH = 1000;

export interface TaggedSetOptions {
  /** Tags of the entry; evicting any of them deletes it. */
  tags: readonly string[];
  /** Time to live in ms. Default: none. */
  ttl?: number;
  /** Namespace of the entry. Default: the cache's (Keyv's, or `options.namespace`). */
  namespace?: string;
}

/**
 * A tag index over a PostgresCache's table. Tags belong to a write: `set()` stores the entry and its
 * tag rows in one statement, so no eviction can see one without the other; `evict()` deletes every
 * entry that carries a tag, in every namespace of the cache, and the entries' delete events evict
 * every process's L1. Tag rows are never deleted by an eviction (that could race with a write and
 * leave an entry untagged); they expire with their entry and are pruned in batches.
 *
 * An entry later overwritten by a plain `set()` keeps its old tag rows until they expire: evicting
 * one of those tags may then delete it too (an extra miss, never a stale value).
 */
export class CacheTags {
  private lastPrune = 0;

  constructor(readonly cache: PostgresCache) {}

  /** Stores the entry with its tags; answers with the entry's version. */
  async set(key: string, value: string, options: TaggedSetOptions): Promise<number> {
    assertStorableKey(key);
    assertStorableValue(value);
    const tags = uniqueTags(options.tags);
    const ttl = normalizeTtl(options.ttl);
    const issuedAt = performance.now();
    const namespace = options.namespace ?? this.cache.namespace ?? this.cache.options.namespace ?? '';
    const { names } = this.cache.adapter;
    const written = { namespace, key };
    // Our own L1 forgets the entry (read-your-writes); other processes' through its change event.
    const rows = await this.cache[ownWrite](
      [written],
      () =>
        this.run(
          `WITH tagged AS (
         INSERT INTO ${names.tags} (tag, namespace, key_hash, expires_at)
         SELECT t.tag, $1, ${keyDigest('$2')}, ${NOW_MS} + $4::bigint FROM unnest($5::text[]) AS t(tag)
         ON CONFLICT (tag, namespace, key_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at)
       INSERT INTO ${names.entries} (namespace, key_hash, key, value, expires_at, version)
       VALUES ($1, ${keyDigest('$2')}, $2, $3, ${NOW_MS} + $4::bigint, ${names.nextVersion}())
       ON CONFLICT (namespace, key_hash)
       DO UPDATE SET key = EXCLUDED.key, value = EXCLUDED.value, expires_at = EXCLUDED.expires_at,
         version = ${names.nextVersion}()
       RETURNING version`,
          () => [namespace, key, value, ttlAtRun({ key, value, ttl, issuedAt }), tags],
          'tagged set',
          { namespace, keys: [key], writes: true },
        ),
      (rows) => {
        const version = Number((rows as Array<{ version: string }>)[0]?.version);
        this.cache[forgetDeletedRows]([{ ...written, version }]);
      },
    );
    this.pruneNowAndThen();
    return Number((rows as Array<{ version: string }>)[0]?.version);
  }

  /** Deletes every entry carrying any of the tags, in every namespace. Returns how many were live or not. */
  async evict(tags: readonly string[]): Promise<number> {
    const unique = uniqueTags(tags);
    if (unique.length === 0) return 0;
    // Loads in flight here whose results carry one of them must not store them, though nothing is deleted yet.
    this.cache[evictionsSent]().sent({ tags: unique });
    const { names } = this.cache.adapter;
    // Which rows it deletes is known only once it has run: it goes in order with every keyed call, and our
    // own L1 is not read until it has answered and forgotten them (other processes' through delete events).
    const rows = (await this.cache[ownWrite](
      'everything',
      () =>
        this.run(
          `DELETE FROM ${names.entries} e
            USING (SELECT DISTINCT namespace, key_hash FROM ${names.tags} WHERE tag = ANY($1::text[])) t
            WHERE e.namespace = t.namespace AND e.key_hash = t.key_hash
            RETURNING e.namespace, e.key, e.version`,
          [unique],
          'evicting tags',
          { writes: true },
        ),
      (deleted) =>
        this.cache[forgetDeletedRows](
          (deleted as Array<{ namespace: string; key: string; version: string }>).map((row) => ({
            ...row,
            version: Number(row.version),
          })),
        ),
    )) as unknown[];
    return rows.length;
  }

  /** Deletes up to `batch` tag rows whose entry has expired. Returns how many. */
  async prune(batch = PRUNE_BATCH): Promise<number> {
    const { names } = this.cache.adapter;
    // The second test of expires_at is what a concurrent write that extended the row is re-checked against.
    const rows = await this.run(
      `DELETE FROM ${names.tags}
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM ${names.tags} WHERE expires_at <= ${NOW_MS} LIMIT $1))
          AND expires_at <= ${NOW_MS}
        RETURNING 1`,
      [batch],
      'pruning tags',
    );
    return rows.length;
  }

  private run(text: string, values: StatementValues, doing: string, claim?: Claim): Promise<unknown[]> {
    return this.cache.adapter.execute(text, values, doing, claim);
  }

  private pruneNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    this.prune().catch((error: unknown) => reportError(this.cache, toCacheError(error, 'pruning tags')));
  }
}

function uniqueTags(tags: readonly string[]): string[] {
  if (!Array.isArray(tags)) throw new InvalidKeyError('tags must be an array of strings');
  for (const tag of tags) {
    if (typeof tag !== 'string')
      throw new InvalidKeyError(`a tag must be a non-empty string; got ${JSON.stringify(tag)}`);
    const fault = whyUnstorableTag(tag);
    if (fault) throw new InvalidKeyError(fault);
  }
  return [...new Set(tags)];
}

/** Whether a tag is one an entry could carry (what `uniqueTags` lets through). */
export function isStorableTag(tag: string): boolean {
  return whyUnstorableTag(tag) === undefined;
}

function whyUnstorableTag(tag: string): string | undefined {
  if (tag === '') return 'a tag must be a non-empty string; got ""';
  const keyFault = whyUnstorableKey(tag);
  if (keyFault) return keyFault;
  const bytes = Buffer.byteLength(tag);
  return bytes > MAX_TAG_BYTES ? `a tag may have at most ${MAX_TAG_BYTES} bytes; got ${bytes}` : undefined;
}
