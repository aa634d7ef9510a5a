import { EXPIRED_TTL } from './validation.js';

/** A write on its way to a statement; its ttl counts from the call (`performance.now()`), not from the statement. */
export interface IssuedWrite {
  key: string;
  value: string;
  ttl: number | null;
  issuedAt: number;
}

/**
 * Most characters of keys and values in one multi-row write. pg sends the values as one array literal, a
 * single JavaScript string, which cannot pass about 512 MB: calls that work alone must work merged too.
 */
export const MAX_STATEMENT_CHARS = 64 * 1024 * 1024;

export const writeSize = (write: IssuedWrite) => write.key.length + write.value.length;

/** Writes in runs of at most MAX_STATEMENT_CHARS (a longer write alone), in their order. */
export function bySize(writes: IssuedWrite[]): IssuedWrite[][] {
  const parts: IssuedWrite[][] = [];
  let part: IssuedWrite[] = [];
  let size = 0;
  for (const write of writes) {
    if (part.length > 0 && size + writeSize(write) > MAX_STATEMENT_CHARS) {
      parts.push(part);
      part = [];
      size = 0;
    }
    part.push(write);
    size += writeSize(write);
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/** The ttl left when the statement runs: a write that waited for a connection must not outlive the call's ttl. */
export function ttlAtRun(write: IssuedWrite): number | null {
  if (write.ttl === null) return null;
  const left = write.ttl - (performance.now() - write.issuedAt);
  return left > 0 ? Math.ceil(left) : EXPIRED_TTL;
}
