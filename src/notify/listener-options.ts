import type pg from 'pg';
import { InvalidOptionError, textOf } from '../errors.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import type { BackoffOptions } from './backoff.js';

export interface ListenerOptions {
  /** Where to LISTEN. Must be a direct connection (not PgBouncer in transaction mode). */
  connection: string | pg.ClientConfig;
  reconnect?: BackoffOptions;
  /** How often to prove the connection is alive with a round trip, in ms. Default 2000. */
  heartbeatInterval?: number;
  /** How long a heartbeat may take before the connection counts as dead (half-open), in ms. Default 2000. */
  heartbeatTimeout?: number;
  /**
   * How long one connection attempt may take, from opening the socket until LISTEN is in place on every
   * channel, in ms; then the socket is destroyed and the attempt retried with backoff. Default 5000, as
   * the pool's `connectionTimeout`: a connect is several round trips (TLS, SCRAM) plus one per channel.
   */
  connectTimeout?: number;
}

/**
 * Timings out of range would turn the heartbeat or the reconnect loop into a busy loop (0, a negative,
 * NaN, more than Node's timers hold), on a connection every cache of the process shares.
 */
export function assertListenerOptions(options: Omit<ListenerOptions, 'connection'>): void {
  const { reconnect } = options;
  if (reconnect !== undefined && (typeof reconnect !== 'object' || reconnect === null)) {
    throw new InvalidOptionError('reconnect must be an object ({ initialDelay, maxDelay })');
  }
  const timings: Array<[string, unknown]> = [
    ['heartbeatInterval', options.heartbeatInterval],
    ['heartbeatTimeout', options.heartbeatTimeout],
    ['connectTimeout', options.connectTimeout],
    ['reconnect.initialDelay', reconnect?.initialDelay],
    ['reconnect.maxDelay', reconnect?.maxDelay],
  ];
  for (const [name, value] of timings) {
    if (value !== undefined && !(typeof value === 'number' && value >= 1 && value <= MAX_TIMER_MS)) {
      throw new InvalidOptionError(
        `${name} must be a number of ms from 1 to ${MAX_TIMER_MS}; got ${textOf(value)}`,
      );
    }
  }
}
