import type { OpKind, WorkloadSettings } from './protocol.js';

/**
 * Cold keys for wrap(): every slot of this length has its own small set, so the processes that draw a
 * wrap in the same slot ask for the same keys, none of which anyone filled before.
 */
export const WRAP_SLOT_MS = 500;
export const WRAP_KEYS_PER_SLOT = 4;
/** How long a loader takes: long enough that the other processes arrive while it runs. */
export const LOADER_MS = 40;

export const isWrapKey = (key: string) => key.startsWith('w');

/** The key a clear's record carries: it names no key, it empties them all. */
export const CLEAR_KEY = '*';

/**
 * Share of writes and deletes the same lane follows at once with a read of that key: read-your-writes is
 * at risk only in the moments after an own change (before its own event comes back), and a read drawn at
 * random among the keys almost never lands there.
 */
export const READ_BACK_SHARE = 0.5;

/** The read that follows an own change at once, or undefined (see READ_BACK_SHARE). */
export function readBack(
  done: { kind: OpKind; key: string; error?: string },
  random: () => number = Math.random,
): PlannedOp | undefined {
  if (done.error !== undefined || (done.kind !== 'write' && done.kind !== 'delete')) return undefined;
  return random() < READ_BACK_SHARE ? { kind: 'read', key: done.key } : undefined;
}

export interface PlannedOp {
  kind: OpKind;
  key: string;
}

/** Draws the next operation: a wrap on a cold key with `wrapShare`, otherwise read/write/delete/clear by the mix. */
export function nextOp(
  settings: WorkloadSettings,
  at: number,
  random: () => number = Math.random,
): PlannedOp {
  if (random() < settings.wrapShare) {
    const slot = Math.floor(at / WRAP_SLOT_MS);
    return { kind: 'wrap', key: `w${slot}-${Math.floor(random() * WRAP_KEYS_PER_SLOT)}` };
  }
  const key = `k${Math.floor(random() * settings.keys)}`;
  const draw = random();
  const { read, write, clear } = settings.mix;
  if (draw < read) return { kind: 'read', key };
  if (draw < read + write) return { kind: 'write', key };
  if (draw < 1 - clear) return { kind: 'delete', key };
  return { kind: 'clear', key: CLEAR_KEY };
}

/** A value that names its writer and sequence number, padded to `size` characters. */
export function encodeValue(writer: number, seq: number, size: number): string {
  const head = `${writer}:${seq}:`;
  return head.padEnd(Math.max(size, head.length), 'x');
}

/** [writer, seq] of a value written by encodeValue; undefined for anything else. */
export function decodeValue(value: unknown): [number, number] | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+):(\d+):/.exec(value);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}
