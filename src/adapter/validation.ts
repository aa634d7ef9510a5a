import { createHash } from 'node:crypto';
import { InvalidKeyError, InvalidOptionError, InvalidValueError, textOf } from '../errors.js';

/** In unicode mode a surrogate pair is one code point, so this matches only a lone surrogate. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function notAStringKey(key: unknown): InvalidKeyError {
  return new InvalidKeyError(`keys must be strings; got ${key === null ? 'null' : typeof key}`);
}

/** Keys must reach PostgreSQL unchanged: text cannot hold NUL, and UTF-8 turns a lone surrogate into U+FFFD. */
export function assertStorableKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw notAStringKey(key);
  const fault = whyUnstorableKey(key);
  if (fault) throw new InvalidKeyError(fault);
}

/**
 * An array, of keys: anything else is refused with a typed error before its first key is read. The keys
 * themselves are checked where they are used (`assertStorableKey`).
 */
export function assertKeyList(keys: unknown): asserts keys is string[] {
  if (!Array.isArray(keys)) throw new InvalidKeyError(`keys must be an array of strings; got ${typeof keys}`);
}

/** An array of storable keys. */
export function assertKeys(keys: unknown): asserts keys is string[] {
  assertKeyList(keys);
  keys.forEach(assertStorableKey);
}

/**
 * A copy of an array of storable keys: a call holds on to its keys while it waits, and the caller may reuse
 * its own array meanwhile.
 */
export function storableKeys(keys: unknown): string[] {
  assertKeyList(keys);
  const copy = [...keys];
  copy.forEach(assertStorableKey);
  return copy;
}

/** An array of `{ key, value, ttl? }` entries (the values and ttls are checked where they are written). */
export function assertEntryList(entries: unknown): asserts entries is Array<{ key: string }> {
  const shape = 'entries must be an array of { key, value, ttl? } objects';
  if (!Array.isArray(entries)) throw new InvalidKeyError(`${shape}; got ${typeof entries}`);
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null)
      throw new InvalidKeyError(`${shape}; got ${textOf(entry)}`);
    assertStorableKey((entry as { key: unknown }).key);
  }
}

/** Whether `assertStorableKey` would let the key through. */
export function isStorableKey(key: string): boolean {
  return whyUnstorableKey(key) === undefined;
}

/** Why PostgreSQL would not store the key as it is, if it would not. */
export function whyUnstorableKey(key: string): string | undefined {
  if (key.includes('\u0000')) return 'keys cannot contain NUL (\\u0000): PostgreSQL text cannot store it';
  if (LONE_SURROGATE.test(key))
    return 'keys cannot contain an unpaired UTF-16 surrogate: it would be stored as U+FFFD';
  return undefined;
}

/** A namespace is stored like a key, so it must reach PostgreSQL unchanged too (a typed error before any SQL). */
export function assertNamespace(namespace: unknown): asserts namespace is string {
  if (typeof namespace !== 'string') {
    throw new InvalidKeyError(`namespaces must be strings; got ${typeof namespace}`);
  }
  if (namespace.includes('\u0000') || LONE_SURROGATE.test(namespace)) {
    throw new InvalidKeyError(
      `namespaces cannot contain NUL (\\u0000) or an unpaired UTF-16 surrogate; got ${JSON.stringify(namespace)}`,
    );
  }
}

/**
 * The adapter stores the strings Keyv serialises. Anything else would have to be converted, and a
 * conversion that loses data silently is worse than an error.
 */
export function assertStorableValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new InvalidValueError(
      `the adapter stores strings (Keyv serialises values before they reach it); got ${value === null ? 'null' : typeof value}`,
    );
  }
  if (value.includes('\u0000')) {
    throw new InvalidValueError('values cannot contain NUL (\\u0000): PostgreSQL text cannot store it');
  }
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidValueError(
      'values cannot contain an unpaired UTF-16 surrogate: it would be stored as U+FFFD',
    );
  }
}

/**
 * The values and ttls of a batch, checked as their writes would check them, before any part of it is written:
 * a batch split by namespace writes its parts apart.
 */
export function assertWritableEntries(entries: ReadonlyArray<{ value: unknown; ttl?: unknown }>): void {
  for (const entry of entries) {
    assertStorableValue(entry.value);
    normalizeTtl(entry.ttl);
  }
}

/** The ttl of an entry stored already expired: it replaces what was there, and no read returns it. */
export const EXPIRED_TTL = -1;

/**
 * Milliseconds to live as the database wants them: null for none (undefined, 0 or Infinity, as Keyv means
 * them). A ttl past 2^53 ms (285,000 years) is none too: beyond it a number no longer counts milliseconds.
 * A negative ttl (a deadline already past) stores the entry expired, as Keyv over its own Map reads it.
 */
export function normalizeTtl(ttl: unknown): number | null {
  if (ttl === undefined || ttl === null || ttl === 0) return null;
  if (typeof ttl !== 'number' || Number.isNaN(ttl)) {
    throw new InvalidOptionError(`ttl must be a number of milliseconds; got ${textOf(ttl)}`);
  }
  if (ttl < 0) return EXPIRED_TTL;
  return ttl > Number.MAX_SAFE_INTEGER ? null : Math.ceil(ttl);
}

/** The hex digest a change event carries in place of a key too long for a NOTIFY payload. */
export function keyDigestHex(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
