import { CLEAR_MARKER, NOW_MS } from '../../src/adapter/sql.js';
import type { PostgresAdapter } from '../../src/index.js';
import { sleep } from '../clock.js';
import type { HarnessDatabase } from './database.js';
import { type ClientProcess, everyReply } from './fleet.js';
import type { CacheSettings, WorkerMessage } from './protocol.js';

export const FENCE_KEY = '__fence__';
const FENCE_REPLY_MS = 15_000;
const ATTEMPTS = 20;
const NO_NOTIFICATIONS_MARGIN_MS = 200;

export interface TableRow {
  value: string;
  version: number;
  /** Expiry by the database's clock, and that clock when the snapshot was taken. */
  expiresAt: number | undefined;
  nowMs: number;
}

type Fenced = Extract<WorkerMessage, { type: 'fenced' }>;

export interface SettledState {
  /** Each client's answer to the last fence (its L1, whether it was listening), by client index. */
  replies: Map<number, Fenced>;
  table: Map<string, TableRow>;
  attempts: number;
}

/**
 * Waits until the events of every write have reached every client, then snapshots each L1 and the table.
 * Notifications arrive in commit order, so once a client has seen the event of a write made after the
 * workload stopped (the fence), it has applied every earlier one. A client whose listener is not
 * connected cannot prove that: the fence is retried until all are listening, or the attempts run out.
 * Without notifications there are no events to wait for: the L1 TTL is waited out instead.
 */
export async function settle(
  clients: ClientProcess[],
  db: HarnessDatabase,
  adapter: PostgresAdapter,
  namespace: string,
  cache: CacheSettings,
): Promise<SettledState> {
  // Without notifications nothing tells a client of a change: its L1 agrees only once l1.ttl has passed.
  if (!cache.notifications) await sleep((cache.l1TtlMs ?? 0) + NO_NOTIFICATIONS_MARGIN_MS);
  let replies: Fenced[] = [];
  let attempt = 0;
  while (attempt < ATTEMPTS) {
    attempt++;
    for (const client of clients) client.send({ type: 'arm-fence', key: FENCE_KEY });
    await everyReply(clients, 'fence-armed', FENCE_REPLY_MS);
    await adapter.writeEntry(namespace, `${namespace}:${FENCE_KEY}`, `fence ${attempt}`);
    replies = await everyReply(clients, 'fenced', FENCE_REPLY_MS);
    if (replies.every((reply) => reply.arrived && reply.coherent)) break;
    await sleep(500);
  }
  // What a reader sees: not the clear marker, nor the rows a clear hid (below its version) that the sweeper
  // has not deleted yet. An L1 entry of a cleared key must find no row.
  const { entries } = adapter.names;
  const { rows } = await db.admin.query<{
    key: string;
    value: string;
    version: string;
    expires_at: string | null;
    now_ms: string;
  }>(
    `SELECT key, value, version, expires_at, ${NOW_MS} AS now_ms FROM ${entries}
      WHERE namespace = $1 AND key_hash <> ${CLEAR_MARKER}
        AND version > COALESCE((SELECT m.version FROM ${entries} m WHERE m.namespace = $1 AND m.key_hash = ${CLEAR_MARKER}), 0)`,
    [namespace],
  );
  const table = new Map<string, TableRow>();
  for (const row of rows) {
    table.set(row.key, {
      value: row.value,
      version: Number(row.version),
      expiresAt: row.expires_at === null ? undefined : Number(row.expires_at),
      nowMs: Number(row.now_ms),
    });
  }
  const byClient = new Map(clients.map((client, position) => [client.index, replies[position] as Fenced]));
  return { replies: byClient, table, attempts: attempt };
}
