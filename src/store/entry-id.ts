import { isStorableKey, keyDigestHex, notAStringKey } from '../adapter/validation.js';

/**
 * Past this many UTF-16 units (namespace + key), a key is identified by its digest. The trigger sends
 * a digest only when the JSON payload passes 7999 bytes, which needs more than 441 units even if every
 * unit were escaped six-fold; so every event that carries a digest names an entry identified by one.
 */
const LONG_KEY_UNITS = 400;

/**
 * The identity of a cache entry inside this process (L1 and fill guard). Keys cannot contain NUL,
 * so NUL separates; a digest identity starts with a second NUL, which no key can.
 */
export function entryId(namespace: string, key: string): string {
  if (typeof key !== 'string') throw notAStringKey(key);
  if (namespace.length + key.length > LONG_KEY_UNITS) return digestEntryId(namespace, keyDigestHex(key));
  return `${namespace}\u0000${key}`;
}

export function digestEntryId(namespace: string, keyDigest: string): string {
  return `${namespace}\u0000\u0000${keyDigest}`;
}

/**
 * The id a lookup of `key` may read, or undefined when it may read none: a key PostgreSQL would not store is in
 * no entry, and must not find another key's. A short id holds the key itself, so such a key can only miss,
 * unless it starts with NUL and reads as a digest id; a long key is named by its UTF-8's digest, the same for a
 * lone surrogate as for U+FFFD. (The full check costs a scan of the key on every L1 hit.)
 */
export function lookupId(namespace: string, key: string): string | undefined {
  if (namespace.length + key.length > LONG_KEY_UNITS) {
    return isStorableKey(key) ? digestEntryId(namespace, keyDigestHex(key)) : undefined;
  }
  return key.charCodeAt(0) === 0 ? undefined : `${namespace}\u0000${key}`;
}
