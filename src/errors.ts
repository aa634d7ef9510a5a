/** Every error this library raises is a `PostgresCacheError`; `code` tells them apart without `instanceof`. */
export class PostgresCacheError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A key PostgreSQL cannot store exactly: not a string, a NUL byte, or an unpaired UTF-16 surrogate. */
export class InvalidKeyError extends PostgresCacheError {
  constructor(message: string) {
    super('ERR_PGCACHE_INVALID_KEY', message);
  }
}

/** A value that cannot be stored without loss (the adapter stores strings; the store stores JSON). */
export class InvalidValueError extends PostgresCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGCACHE_INVALID_VALUE', message, options);
  }
}

/** A schema, table prefix or channel name that is not a plain SQL identifier. */
export class InvalidIdentifierError extends PostgresCacheError {
  constructor(message: string) {
    super('ERR_PGCACHE_INVALID_IDENTIFIER', message);
  }
}

/** An option with a value out of its range. */
export class InvalidOptionError extends PostgresCacheError {
  constructor(message: string) {
    super('ERR_PGCACHE_INVALID_OPTION', message);
  }
}

/** The database could not be reached, dropped the connection, or did not answer in time. */
export class ConnectionError extends PostgresCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGCACHE_CONNECTION', message, options);
  }
}

/** The cache's tables are missing or older than this version of the library, and it may not migrate them. */
export class SchemaError extends PostgresCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGCACHE_SCHEMA', message, options);
  }
}

/** A query failed for a reason other than the connection. */
export class QueryError extends PostgresCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGCACHE_QUERY', message, options);
  }
}

/** The instance was disconnected and can no longer be used. */
export class DisconnectedError extends PostgresCacheError {
  constructor() {
    super('ERR_PGCACHE_DISCONNECTED', 'this cache has been disconnected');
  }
}

/** Waiting for another process to fill a key took longer than `lockTimeout`. */
export class LockTimeoutError extends PostgresCacheError {
  constructor(message: string) {
    super('ERR_PGCACHE_LOCK_TIMEOUT', message);
  }
}

/** Connection exceptions, operator intervention, and a login refused (class 28: a wrong password or role). */
const CONNECTION_SQLSTATE_CLASSES = ['08', '57', '28'];
/**
 * too_many_connections: the server refused a new connection, as it would when unreachable; a database that
 * does not exist (3D000) is refused at login too.
 */
const CONNECTION_SQLSTATES = new Set(['53300', '3D000']);
const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error',
  'Client was closed',
];

/** True when a `pg` error means the connection, not the statement, failed. */
export function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (CONNECTION_ERRNOS.has(code) || CONNECTION_SQLSTATES.has(code)) return true;
    // 57014 is a statement timeout or cancel: the server answered, so it is a query failure.
    if (code !== '57014' && CONNECTION_SQLSTATE_CLASSES.some((prefix) => code.startsWith(prefix)))
      return true;
  }
  if (error instanceof AggregateError) return error.errors.some(isConnectionFailure);
  return CONNECTION_MESSAGES.some((text) => error.message.includes(text));
}

/**
 * SQLSTATEs of a transaction rolled back so that another could go on: a serialization failure (a row changed
 * after the snapshot of a REPEATABLE READ or SERIALIZABLE transaction) and a deadlock's victim. The same
 * statement in a new transaction is the cure.
 */
const ROLLED_BACK_FOR_ANOTHER = new Set(['40001', '40P01']);

/** Whether a statement that failed so may simply be run again: it had no effect. */
export function isRolledBackForAnother(error: unknown): boolean {
  const code = sqlStateOf(error);
  return code !== undefined && ROLLED_BACK_FOR_ANOTHER.has(code);
}

/** The SQLSTATE of a `pg` error, or of the one a typed error wraps. */
export function sqlStateOf(error: unknown): string | undefined {
  const found = error instanceof PostgresCacheError ? error.cause : error;
  const code = typeof found === 'object' && found !== null ? (found as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Wraps whatever `pg` threw into the typed error a caller can act on. */
export function toCacheError(error: unknown, doing: string): PostgresCacheError {
  if (error instanceof PostgresCacheError) return error;
  const detail = error instanceof Error ? error.message || error.constructor.name : textOf(error);
  if (isConnectionFailure(error)) return new ConnectionError(`${doing}: ${detail}`, { cause: error });
  return new QueryError(`${doing}: ${detail}`, { cause: error });
}

/** Any value as text, for a message; some (a Symbol, an object without a prototype) cannot be made a string. */
export function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A value a message quotes: a string in JSON quotes, anything else as `textOf` gives it. */
export function quoted(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : textOf(value);
}
