import { assertStorableKey } from '../../adapter/validation.js';
import { InvalidOptionError, textOf } from '../../errors.js';
import { MAX_TIMER_MS } from '../../timer-limit.js';

/** A number of milliseconds, or a function of the loaded value that gives one (cache-manager's shape). */
export type ValueDependent<T> = number | ((value: T) => number);

/**
 * How a session waits for another process's fill. `session` (default) holds a session-level advisory lock
 * on one connection for the length of the loader. `transaction` holds a transaction-level lock inside
 * `BEGIN … COMMIT` on one connection: what works through PgBouncer in transaction pooling.
 */
export type LockMode = 'session' | 'transaction';

/** What a caller does when another process has held the fill lock for longer than `lockTimeout`. */
export type LockTimeoutAction = 'load' | 'throw';

/** Settings of `wrap()` that make sense for a whole cache (`PostgresCacheOptions.wrap`) as well as per call. */
export interface WrapDefaults {
  /** How long to wait for another process's fill before `onLockTimeout` applies, in ms. Default 10000. */
  lockTimeout?: number;
  /** `load` (default): run the loader anyway, without the lock. `throw`: reject with `LockTimeoutError`. */
  onLockTimeout?: LockTimeoutAction;
  /** See `LockMode`. Default `session`. */
  lockMode?: LockMode;
  /** Longest pause between two looks at a key another process is filling, in ms. Default 500. */
  maxPollInterval?: number;
}

export interface WrapOptions<T> extends WrapDefaults {
  /** Time to live of the loaded value, in ms; a function of the value is called once per load. Default: none. */
  ttl?: ValueDependent<T>;
  /**
   * When a hit has less than this left to live (ms), the value is returned and refreshed in the background,
   * by one process of the cluster.
   */
  refreshThreshold?: ValueDependent<T>;
  /** Gives up waiting for this caller only: the fill goes on for every other caller. */
  signal?: AbortSignal;
  /** Resolve with `{ value, expires }` as cache-manager's `wrap(…, { raw: true })` does. */
  raw?: boolean;
}

/** What `wrap(…, { raw: true })` resolves with: the value and its expiry in epoch ms (undefined: none). */
export interface RawWrapResult<T> {
  value: T;
  expires: number | undefined;
}

export interface ResolvedWrapOptions<T> {
  ttl: ValueDependent<T> | undefined;
  refreshThreshold: ValueDependent<T> | undefined;
  signal: AbortSignal | undefined;
  raw: boolean;
  lockTimeout: number;
  onLockTimeout: LockTimeoutAction;
  lockMode: LockMode;
  maxPollInterval: number;
}

const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_POLL_MS = 500;

/** The options object of a `wrap()` call, whichever call shape it used. */
export function givenWrapOptions<T>(
  ttlOrOptions: ValueDependent<T> | WrapOptions<T> | undefined,
  refreshThreshold: ValueDependent<T> | undefined,
): WrapOptions<T> {
  return typeof ttlOrOptions === 'object' && ttlOrOptions !== null
    ? ttlOrOptions
    : { ttl: ttlOrOptions, refreshThreshold };
}

/**
 * Reads the third and fourth arguments of `wrap()` in each of cache-manager's call shapes:
 * `(ttl?, refreshThreshold?)` or `(options)`, over the cache's defaults.
 */
export function resolveWrapOptions<T>(
  ttlOrOptions: ValueDependent<T> | WrapOptions<T> | undefined,
  refreshThreshold: ValueDependent<T> | undefined,
  defaults: WrapDefaults | undefined,
): ResolvedWrapOptions<T> {
  const given = givenWrapOptions(ttlOrOptions, refreshThreshold);
  const resolved: ResolvedWrapOptions<T> = {
    ttl: given.ttl,
    refreshThreshold: given.refreshThreshold,
    signal: given.signal,
    raw: given.raw === true,
    lockTimeout: given.lockTimeout ?? defaults?.lockTimeout ?? DEFAULT_LOCK_TIMEOUT_MS,
    onLockTimeout: given.onLockTimeout ?? defaults?.onLockTimeout ?? 'load',
    lockMode: given.lockMode ?? defaults?.lockMode ?? 'session',
    maxPollInterval: given.maxPollInterval ?? defaults?.maxPollInterval ?? DEFAULT_MAX_POLL_MS,
  };
  assertWrapOptions(resolved);
  return resolved;
}

/**
 * What every `wrap()` checks before anything else, whichever cache runs it (NullCache included), without
 * building anything (the hit path runs it on every call).
 */
export function assertWrapCall<T>(
  key: string,
  loader: unknown,
  ttlOrOptions: ValueDependent<T> | WrapOptions<T> | undefined,
  refreshThreshold: ValueDependent<T> | undefined,
): void {
  assertWrapArguments(ttlOrOptions, refreshThreshold);
  if (typeof loader !== 'function') throw new InvalidOptionError('wrap() needs a loader function');
  if (typeof key !== 'string') assertStorableKey(key);
}

function assertWrapArguments<T>(
  ttlOrOptions: ValueDependent<T> | WrapOptions<T> | undefined,
  refreshThreshold: ValueDependent<T> | undefined,
): void {
  if (typeof ttlOrOptions === 'object' && ttlOrOptions !== null) {
    assertWrapOptions(ttlOrOptions);
  } else {
    assertValueDependent(ttlOrOptions, 'ttl');
    assertValueDependent(refreshThreshold, 'refreshThreshold');
  }
}

/** A cache's `wrap` defaults, checked when the cache is made rather than at its first `wrap()`. */
export function assertWrapDefaults(defaults: unknown): void {
  if (defaults === undefined) return;
  if (typeof defaults !== 'object' || defaults === null) {
    throw new InvalidOptionError(
      'wrap must be an object ({ lockTimeout, onLockTimeout, lockMode, maxPollInterval })',
    );
  }
  const { lockTimeout, onLockTimeout, lockMode, maxPollInterval } = defaults as WrapDefaults;
  assertWrapOptions({ lockTimeout, onLockTimeout, lockMode, maxPollInterval });
}

/** Every option present is in its range; absent ones are left to the defaults. */
function assertWrapOptions<T>(options: WrapOptions<T>): void {
  assertValueDependent(options.ttl, 'ttl');
  assertValueDependent(options.refreshThreshold, 'refreshThreshold');
  const { lockTimeout, maxPollInterval, onLockTimeout, lockMode, signal } = options;
  // Both end up on timers, which past MAX_TIMER_MS would fire after 1 ms.
  if (
    lockTimeout !== undefined &&
    !(typeof lockTimeout === 'number' && lockTimeout >= 0 && lockTimeout <= MAX_TIMER_MS)
  ) {
    throw new InvalidOptionError(
      `lockTimeout must be a non-negative number of ms, at most ${MAX_TIMER_MS}; got ${textOf(lockTimeout)}`,
    );
  }
  if (
    maxPollInterval !== undefined &&
    !(typeof maxPollInterval === 'number' && maxPollInterval >= 1 && maxPollInterval <= MAX_TIMER_MS)
  ) {
    throw new InvalidOptionError(
      `maxPollInterval must be a positive number of ms, at most ${MAX_TIMER_MS}; got ${textOf(maxPollInterval)}`,
    );
  }
  if (onLockTimeout !== undefined && onLockTimeout !== 'load' && onLockTimeout !== 'throw') {
    throw new InvalidOptionError(`onLockTimeout must be 'load' or 'throw'; got ${textOf(onLockTimeout)}`);
  }
  if (lockMode !== undefined && lockMode !== 'session' && lockMode !== 'transaction') {
    throw new InvalidOptionError(`lockMode must be 'session' or 'transaction'; got ${textOf(lockMode)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidOptionError('signal must be an AbortSignal');
  }
}

/** A ttl may be negative (a deadline already past: the value is stored expired); a threshold may not. */
function inRange(value: unknown, name: 'ttl' | 'refreshThreshold'): boolean {
  return typeof value === 'number' && !Number.isNaN(value) && (name === 'ttl' || value >= 0);
}

const expected = (name: 'ttl' | 'refreshThreshold') =>
  name === 'ttl' ? 'a number of ms' : 'a non-negative number of ms';

function assertValueDependent(value: unknown, name: 'ttl' | 'refreshThreshold'): void {
  if (value === undefined || typeof value === 'function' || inRange(value, name)) return;
  throw new InvalidOptionError(
    `${name} must be ${expected(name)} or a function of the value; got ${textOf(value)}`,
  );
}

/** The number a `ValueDependent` gives for this value; a function that returns a bad number is bad input too. */
export function valueDependent<T>(
  setting: ValueDependent<T> | undefined,
  value: T,
  name: 'ttl' | 'refreshThreshold',
) {
  if (typeof setting !== 'function') return setting;
  const result = setting(value);
  if (result !== undefined && !inRange(result, name)) {
    throw new InvalidOptionError(`${name}(value) must return ${expected(name)}; got ${textOf(result)}`);
  }
  return result;
}
