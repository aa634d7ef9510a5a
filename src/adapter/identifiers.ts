import { createHash } from 'node:crypto';
import { InvalidIdentifierError } from '../errors.js';

const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** PostgreSQL truncates identifiers past NAMEDATALEN - 1 bytes; two names could then collide silently. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * Accepts only plain identifiers (letters, digits, underscore) and returns them double-quoted.
 * Anything else is refused rather than escaped: names reach DDL, LISTEN and function bodies.
 */
export function quoteIdentifier(name: string, what: string): string {
  assertIdentifier(name, what);
  return `"${name}"`;
}

export function assertIdentifier(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || !PLAIN_IDENTIFIER.test(name)) {
    throw new InvalidIdentifierError(
      `${what} must be letters, digits and underscores, not starting with a digit; got ${JSON.stringify(name)}`,
    );
  }
  if (Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new InvalidIdentifierError(
      `${what} ${JSON.stringify(name)} is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES}-byte identifier limit`,
    );
  }
}

/**
 * A name made of plain identifiers (ASCII, a byte per character), shortened deterministically past the limit: its
 * start and a digest of the whole, so that two names that differ anywhere still differ.
 */
export function fittedIdentifier(name: string): string {
  if (name.length <= MAX_IDENTIFIER_BYTES) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_IDENTIFIER_BYTES - hash.length - 1)}_${hash}`;
}

/** A table prefix may be empty, and is checked through the names it produces. */
export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (prefix === '') return;
  if (typeof prefix !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)) {
    throw new InvalidIdentifierError(
      `tablePrefix must be letters, digits and underscores, not starting with a digit; got ${JSON.stringify(prefix)}`,
    );
  }
}
