import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PgListener } from './listener.js';
import { assertListenerOptions, type ListenerOptions } from './listener-options.js';

interface Shared {
  listener: PgListener;
  users: number;
}

const shared = new Map<string, Shared>();

/**
 * A URL and a config holding only that URL are one connection; so are configs that differ in no setting that
 * picks the server, the role or how to reach it.
 */
function identity(connection: ListenerOptions['connection']): string {
  const config: pg.ClientConfig =
    typeof connection === 'string' ? { connectionString: connection } : connection;
  const { connectionString, host, port, database, user, password, ssl, stream } = config;
  return JSON.stringify({ connectionString, host, port, database, user, password, ssl, stream }, byReference);
}

/**
 * What JSON cannot compare by content, a function (a password callback, a socket factory) or an object of a
 * class (a TLS context), is compared by reference: the same one, the same connection.
 */
const referenceIds = new WeakMap<object, string>();
function byReference(_key: string, value: unknown): unknown {
  const isInstance =
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    ![Object.prototype, null].includes(Object.getPrototypeOf(value));
  if (typeof value !== 'function' && !isInstance) return value;
  const reference = value as object;
  let id = referenceIds.get(reference);
  if (id === undefined) {
    id = `reference ${randomUUID()}`;
    referenceIds.set(reference, id);
  }
  return id;
}

export interface ListenerLease {
  listener: PgListener;
  /** Gives the lease back; the last one closes the connection. */
  release(): Promise<void>;
}

/**
 * One LISTEN connection per process and database: every cache and watcher that asks for the same
 * database shares it. The first lease's options (heartbeat, backoff) apply to all.
 */
export function leaseListener(options: ListenerOptions): ListenerLease {
  // Checked even when the connection exists already: a later cache's bad options are its caller's mistake too.
  assertListenerOptions(options);
  const id = identity(options.connection);
  let entry = shared.get(id);
  if (!entry) {
    entry = { listener: new PgListener(options), users: 0 };
    shared.set(id, entry);
  }
  entry.users++;
  const leased = entry;
  let released = false;
  return {
    listener: leased.listener,
    async release() {
      if (released) return;
      released = true;
      leased.users--;
      if (leased.users > 0) return;
      if (shared.get(id) === leased) shared.delete(id);
      await leased.listener.close();
    },
  };
}
