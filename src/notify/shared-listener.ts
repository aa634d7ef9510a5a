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
  const { connectionString, host, port, database, user, ssl } = config;
  const password = typeof config.password === 'function' ? functionId(config.password) : config.password;
  return JSON.stringify({ connectionString, host, port, database, user, password, ssl });
}

/** A password given as a function is compared by reference: the same function, the same credentials. */
const functionIds = new WeakMap<object, string>();
function functionId(fn: object): string {
  let id = functionIds.get(fn);
  if (id === undefined) {
    id = `function ${randomUUID()}`;
    functionIds.set(fn, id);
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
