import { InvalidIdentifierError, quoted } from '../../errors.js';

/** PostgreSQL truncates longer identifiers silently: a longer name would address a different table. */
const MAX_NAME_BYTES = 63;

/**
 * Application tables and columns may have any name PostgreSQL allows (mixed case, spaces, quotes), so
 * they are quoted rather than restricted. Only what cannot be a valid name is refused.
 */
export function assertName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidIdentifierError(`${what} must be a non-empty string; got ${quoted(name)}`);
  }
  if (name.includes('\u0000')) throw new InvalidIdentifierError(`${what} cannot contain NUL`);
  if (/[\uD800-\uDFFF]/u.test(name)) {
    throw new InvalidIdentifierError(`${what} cannot contain an unpaired UTF-16 surrogate`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new InvalidIdentifierError(
      `${what} ${JSON.stringify(name)} is longer than PostgreSQL's ${MAX_NAME_BYTES}-byte identifier limit`,
    );
  }
}

/** A double-quoted identifier; embedded double quotes are doubled, so any name is safe in SQL text. */
export function quoteName(name: string, what: string): string {
  assertName(name, what);
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."table"` */
export function qualifiedName(schema: string, table: string): string {
  return `${quoteName(schema, 'schema')}.${quoteName(table, 'table')}`;
}

/**
 * A string constant in the escape-string form, so its meaning does not depend on the server's
 * `standard_conforming_strings` setting: backslashes and single quotes are both escaped.
 */
export function quoteLiteral(text: string): string {
  if (text.includes('\u0000')) throw new InvalidIdentifierError('a SQL string cannot contain NUL');
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
