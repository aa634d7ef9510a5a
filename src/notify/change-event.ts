import { parsePayloadObject } from './json-payload.js';

/**
 * A change to the cache table, as its trigger announces it. `key` is absent when the key was too long
 * for a NOTIFY payload; `keyDigest` (hex SHA-256 of the key) stands in for it.
 */
export type CacheChange =
  | { op: 'set' | 'delete'; namespace: string; key: string; keyDigest?: undefined; version: number }
  | { op: 'set' | 'delete'; namespace: string; key?: undefined; keyDigest: string; version: number }
  | { op: 'clear'; namespace: string; version: number }
  | { op: 'flush'; version: number };

const isVersion = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value);

/**
 * Sent on the old and the new channel when `notifyChannel` changes and the trigger is re-pointed: whoever
 * listens must check where the trigger points now. Any database user may send it too, so it carries
 * nothing to believe, only that reason to look: `to` (the channel it names) and `by` (the sending start's
 * id) may decide how soon to look, never that L1 may be trusted.
 */
export interface RepointNotice {
  op: 'repoint';
  to?: string;
  by?: string;
}

/**
 * Sent by a cache through its own pool before it trusts its L1, and awaited on its listener: that it arrives
 * proves the listener hears the database the cache writes to. Anyone may send one; it only ever answers the
 * cache waiting for its `id`.
 */
export interface DeliveryProbe {
  op: 'probe';
  id: string;
}

/**
 * Reads a payload from the cache's channel. Any database user may NOTIFY any channel, so anything
 * that is not exactly an event of ours yields undefined, never an exception.
 */
export function decodeCacheChange(payload: string | undefined): CacheChange | undefined {
  return changeOf(parsePayloadObject(payload));
}

/** As `decodeCacheChange`, and a `RepointNotice` or a `DeliveryProbe` too. */
export function decodeChannelMessage(
  payload: string | undefined,
): CacheChange | RepointNotice | DeliveryProbe | undefined {
  const data = parsePayloadObject(payload);
  if (data?.op === 'probe') return typeof data.id === 'string' ? { op: 'probe', id: data.id } : undefined;
  if (data?.op === 'repoint') {
    const { to, by } = data;
    return {
      op: 'repoint',
      ...(typeof to === 'string' ? { to } : {}),
      ...(typeof by === 'string' ? { by } : {}),
    };
  }
  return changeOf(data);
}

function changeOf(data: Record<string, unknown> | undefined): CacheChange | undefined {
  if (!data || !isVersion(data.v)) return undefined;
  const { op, ns, key, kh, v: version } = data;
  if (op === 'flush') return { op, version };
  if (typeof ns !== 'string') return undefined;
  if (op === 'clear') return { op, namespace: ns, version };
  if (op !== 'set' && op !== 'delete') return undefined;
  if (typeof key === 'string') return { op, namespace: ns, key, version };
  if (typeof kh === 'string' && /^[0-9a-f]{64}$/.test(kh))
    return { op, namespace: ns, keyDigest: kh, version };
  return undefined;
}
