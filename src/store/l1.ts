import { LRUCache } from 'lru-cache';
import { InvalidOptionError, textOf } from '../errors.js';

export interface L1Options {
  /** Most entries held; 0 for no count bound (bytes only). Default 10000. */
  max?: number;
  /** Most bytes held (keys and values, counted as UTF-16). Default 50 MB. */
  maxBytes?: number;
  /** Longest an entry may stay in L1, in ms, whatever its row's expiry. Default: the row's expiry only. */
  ttl?: number;
}

export interface L1Entry {
  value: string;
  version: number;
  /** Whether plain JSON.parse reads `value` as Keyv's deserializer does; learnt on the first decoded hit. */
  plainJson: boolean | undefined;
  /** What a hit decoded from `value` and keeps beside it (wrap() shares it between callers). */
  readonly decoded?: unknown;
  /** The decoded value's size, counted in the entry's. */
  readonly decodedBytes?: number;
}

/**
 * Per-entry memory beyond the characters: the entry object, the string headers, lru-cache's slots and its key
 * map (whose table V8 keeps at 2 to 4 times the entries under eviction churn). About 200 bytes measured on
 * Node 20 (x64) with flat one-byte strings, which are also counted at two bytes a character.
 */
const ENTRY_OVERHEAD_BYTES = 256;

/** `false` or an object whose bounds are in range: a NaN ttl would keep entries forever, a ttl of 0 none. */
export function assertL1Options(options: unknown): void {
  // true and null, from JavaScript, have always meant the defaults.
  if (options === undefined || options === null || options === false || options === true) return;
  if (typeof options !== 'object') {
    throw new InvalidOptionError('l1 must be false or an object ({ max, maxBytes, ttl })');
  }
  const { max, maxBytes, ttl } = options as L1Options;
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= 0)) {
    throw new InvalidOptionError(
      `l1.max must be a non-negative integer (0: no count bound); got ${textOf(max)}`,
    );
  }
  if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 1)) {
    throw new InvalidOptionError(`l1.maxBytes must be a positive integer; got ${textOf(maxBytes)}`);
  }
  if (ttl !== undefined && !(typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0)) {
    throw new InvalidOptionError(`l1.ttl must be a positive number of ms; got ${textOf(ttl)}`);
  }
}

/** The in-process tier: bounded by entries and bytes, and never holding an entry past its row's expiry. */
export class L1 {
  private readonly lru: LRUCache<string, L1Entry>;
  private readonly ttlCap: number | undefined;
  private readonly maxBytes: number;

  constructor(options: L1Options = {}) {
    this.ttlCap = options.ttl;
    this.maxBytes = options.maxBytes ?? 50 * 1024 * 1024;
    const max = options.max ?? 10_000;
    this.lru = new LRUCache<string, L1Entry>({
      // lru-cache preallocates `max` slots; with no count bound it grows as needed.
      ...(max > 0 ? { max } : {}),
      maxSize: this.maxBytes,
      sizeCalculation: (entry, id) => entrySize(entry, id) + (entry.decodedBytes ?? 0),
      // lru-cache checks expiry lazily on read; no timers.
      ttlAutopurge: false,
      // A clock read on every check: lru-cache's default caches it until a timer clears it, which a caller that
      // awaits only L1 hits (never yielding to timers) would not let happen, and expired entries would be served.
      ttlResolution: 0,
    });
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get(id: string): L1Entry | undefined {
    return this.lru.get(id);
  }

  /**
   * Holds a version of an entry, unless a newer one is held already.
   * @param ttlLeft the row's remaining lifetime in ms; undefined when it has none.
   * @param since when, on `performance.now()`'s clock, that lifetime began to count down.
   */
  set(id: string, value: string, version: number, ttlLeft: number | undefined, since: number): void {
    const held = this.lru.peek(id);
    if (held !== undefined && held.version > version) return;
    const ttl = minDefined(ttlLeft, this.ttlCap);
    if (ttl !== undefined && ttl <= 0) {
      this.lru.delete(id);
      return;
    }
    this.lru.set(
      id,
      { value, version, plainJson: undefined },
      ttl === undefined ? undefined : { ttl, start: since },
    );
  }

  /**
   * Keeps a value decoded from `held` beside it, counted in L1's bytes (which may push other entries out),
   * unless `held` was replaced meanwhile. The entry keeps its expiry.
   */
  keepDecoded(id: string, held: L1Entry, decoded: unknown, decodedBytes: number): void {
    if (this.lru.peek(id) !== held) return;
    // Too large to keep decoded: the entry stays as text (lru-cache would drop it altogether).
    if (entrySize(held, id) + decodedBytes > this.maxBytes) return;
    this.lru.set(id, { ...held, decoded, decodedBytes }, { noUpdateTTL: true });
  }

  /** Evicts the entry when the event's version is newer than the one held. Returns whether it did. */
  evictOlderThan(id: string, version: number): boolean {
    const held = this.lru.peek(id);
    if (held === undefined || held.version >= version) return false;
    this.lru.delete(id);
    return true;
  }

  /** Live entries, without touching their recency. */
  *entries(): Generator<[string, L1Entry]> {
    for (const id of [...this.lru.keys()]) {
      const entry = this.lru.peek(id);
      if (entry !== undefined) yield [id, entry];
    }
  }

  delete(id: string): boolean {
    return this.lru.delete(id);
  }

  /** Evicts the entries of a namespace older than `version` (what a clear of that version hides); returns how many. */
  deleteNamespace(namespace: string, version: number): number {
    const prefix = `${namespace}\u0000`;
    let removed = 0;
    for (const id of [...this.lru.keys()]) {
      if (id.startsWith(prefix) && this.evictOlderThan(id, version)) removed++;
    }
    return removed;
  }

  clear(): number {
    const removed = this.lru.size;
    this.lru.clear();
    return removed;
  }
}

/** An entry's bytes as L1 counts them, without a decoded value. */
function entrySize(entry: L1Entry, id: string): number {
  return (entry.value.length + id.length) * 2 + ENTRY_OVERHEAD_BYTES;
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
