import type pg from 'pg';
import { decodeTableEvent } from '../../src/index.js';
import { eventually } from '../support/database.js';
import { listenOn } from '../support/notifications.js';

/** A double-quoted identifier, for test SQL with hostile names. */
export const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A plain LISTEN connection the library does not own: what arrives on a channel, raw and decoded. */
export async function listenRaw(channel: string) {
  const listener = await listenOn(channel);
  return {
    get payloads() {
      return listener.payloads();
    },
    events: () => listener.payloads().map((payload) => decodeTableEvent(payload)),
    /** Waits (with a generous deadline) until at least `count` payloads arrived. */
    received: (count: number) => eventually(() => listener.received.length >= count, 15_000),
    close: () => listener.end(),
  };
}

/** The backend pid of a watcher's LISTEN connection (the listener keeps its client to itself). */
export function listenerPid(listener: unknown): number | undefined {
  const inside = listener as { backendPid?: number; client?: { processID?: number } };
  return inside.backendPid ?? inside.client?.processID;
}

/** Ends the LISTEN connection with that pid the way an operator or a failover would. */
export async function killListener(pool: pg.Pool, pid: number | undefined): Promise<number> {
  const { rowCount } = await pool.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE pid = $1 AND application_name = 'postgres-cache listener'`,
    [pid ?? -1],
  );
  return rowCount ?? 0;
}
