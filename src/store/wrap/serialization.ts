import { defaultDeserialize, defaultSerialize } from '@keyv/serialize';
import { InvalidValueError } from '../../errors.js';

/** A value as Keyv 5 keeps it: `{ value, expires }`, `expires` in epoch ms by the writer's clock. */
export interface KeyvEntry<T = unknown> {
  value: T;
  expires: number | undefined;
}

/**
 * Serialises an entry exactly as Keyv's default serializer does, so that Keyv code on the same namespace
 * reads what `wrap()` stored and the other way round. A value that cannot be serialised (a BigInt, a
 * cycle, a symbol, a function) is an `InvalidValueError`, and nothing is stored.
 */
export function encodeEntry(entry: KeyvEntry): string {
  // The serializer drops a function (the entry would read back as missing, and each call would load and
  // write again) and writes a symbol as text that is not JSON.
  const kind = typeof entry.value;
  if (kind === 'function' || kind === 'symbol') {
    throw new InvalidValueError(`the value cannot be cached as JSON: it is a ${kind}`);
  }
  let text: string;
  try {
    text = defaultSerialize(entry);
    // Reading it back proves it is JSON, whatever else the serializer lets through.
    JSON.parse(text);
  } catch (error) {
    const reason =
      error instanceof RangeError ? 'it contains a cycle or is nested too deeply' : describe(error);
    throw new InvalidValueError(`the value cannot be cached as JSON: ${reason}`, { cause: error });
  }
  return text;
}

/** The live entry in a stored text, or undefined when there is none (missing, expired or not Keyv's format). */
export function decodeEntry(text: string | undefined, now = Date.now()): KeyvEntry | undefined {
  const entry = text === undefined ? undefined : parseEntry(text);
  return entry !== undefined && isLive(entry, now) ? entry : undefined;
}

/** Keyv's own reading of expiry: past `expires`, an entry is missing. */
export function isLive(entry: KeyvEntry, now = Date.now()): boolean {
  return entry.expires === undefined || now <= entry.expires;
}

/**
 * A string token that starts with a colon: the only thing Keyv's deserializer changes (`:base64:` Buffers
 * and escaped colons). Without one, plain JSON.parse reads the same value, several times faster.
 */
const COLON_STRING = /(^|[[{,:])\s*":/;

/** Whether plain JSON.parse reads a stored text as Keyv's default deserializer does. */
export function readsAsPlainJson(text: string): boolean {
  return !COLON_STRING.test(text);
}

/** What Keyv's default deserializer decodes a stored text to; throws where it would (text that is not JSON). */
export function deserializeAsKeyv(text: string, plainJson = readsAsPlainJson(text)): unknown {
  return plainJson ? JSON.parse(text) : defaultDeserialize(text);
}

/** An entry as Keyv's default deserializer hands it to Keyv. */
export interface KeyvData {
  value?: unknown;
  expires?: number | null;
}

/**
 * A held text decoded for Keyv, as a new object on every call (callers may change what they get). A text
 * that does not decode to an object is returned as it is, for Keyv to read as it would have anyway.
 */
export function keyvDataOf(held: { value: string; plainJson: boolean | undefined }): KeyvData | string {
  held.plainJson ??= readsAsPlainJson(held.value);
  try {
    const data = deserializeAsKeyv(held.value, held.plainJson);
    return typeof data === 'object' && data !== null ? (data as KeyvData) : held.value;
  } catch {
    return held.value;
  }
}

/** The entry in a stored text, live or not; undefined when the text is not Keyv's format. */
export function parseEntry(text: string): KeyvEntry | undefined {
  let data: unknown;
  try {
    data = deserializeAsKeyv(text);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const { value, expires } = data as { value?: unknown; expires?: unknown };
  // No value is how Keyv reads a missing entry.
  if (value === undefined) return undefined;
  return { value, expires: typeof expires === 'number' ? expires : undefined };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
