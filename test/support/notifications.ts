import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { databaseUrl } from './database.js';

export interface Notification {
  channel: string;
  payload: string;
}

/**
 * A LISTEN connection that collects what the channels receive. `drain()` returns once everything committed
 * before it has arrived: it sends a marker on each channel and waits for the markers, which PostgreSQL
 * delivers after every notification committed earlier. A test then asserts on exactly what was sent,
 * however slow the machine, instead of sleeping and hoping it all came.
 */
export async function listenOn(...channels: string[]) {
  const client = new pg.Client({ connectionString: databaseUrl() });
  client.on('error', () => undefined);
  await client.connect();
  const received: Notification[] = [];
  const markers = new Map<string, () => void>();
  client.on('notification', ({ channel, payload = '' }) => {
    const arrived = markers.get(payload);
    if (arrived) arrived();
    else received.push({ channel, payload });
  });
  for (const channel of channels) await client.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
  return {
    received,
    payloads: () => received.map((notification) => notification.payload),
    async drain(): Promise<void> {
      await Promise.all(
        channels.map(async (channel) => {
          const marker = `drain-${randomUUID()}`;
          const arrived = new Promise<void>((resolve) => markers.set(marker, resolve));
          await client.query('SELECT pg_notify($1, $2)', [channel, marker]);
          await arrived;
          markers.delete(marker);
        }),
      );
    },
    end: () => client.end(),
  };
}
