import { PgListener } from './listener.js';
import { assertListenerOptions, type ListenerOptions } from './listener-options.js';

interface Shared {
  listener: PgListener;
  users: number;
}

const shared = new Map<string, Shared>();

/** A URL and a config holding only that URL are one connection. */
function identity(connection: ListenerOptions['connection']): string {
  const { connectionString, host, port, database, user } =
    typeof connection === 'string' ? { connectionString: connection } : connection;
  return JSON.stringify({ connectionString, host, port, database, user });
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
