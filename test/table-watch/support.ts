import pg from 'pg';
import { decodeTableEvent } from '../../src/index.js';
import { databaseUrl, eventually } from '../support/database.js';

/** A double-quoted identifier, for test SQL with hostile names. */
export const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A plain LISTEN connection the library does not own: what arrives on a channel, raw and decoded. */
export async function listenRaw(channel: string) {
  const client = new pg.Client({ connectionString: databaseUrl() });
  const payloads: string[] = [];
  client.on('notification', (message) => {
    if (message.channel === channel) payloads.push(message.payload ?? '');
  });
  client.on('error', () => undefined);
  await client.connect();
  await client.query(`LISTEN ${q(channel)}`);
  return {
    payloads,
    events: () => payloads.map((payload) => decodeTableEvent(payload)),
    /** Waits (with a generous deadline) until at least `count` payloads arrived. */
    received: (count: number) => eventually(() => payloads.length >= count, 15_000),
    close: () => client.end(),
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
