import { keyDigestHex, notAStringKey } from '../adapter/validation.js';

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
