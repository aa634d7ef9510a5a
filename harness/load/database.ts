import pg from 'pg';
import { startEmbeddedPostgres } from '../../support/embedded-postgres.js';
import { withUrlParameter } from '../bench/lib/database.js';

/** The PostgreSQL a harness run uses, and the coordinator's own small pool on it. */
export interface HarnessDatabase {
  url: string;
  source: 'DATABASE_URL' | 'embedded';
  serverVersion: string;
  /** The coordinator's connections (setup, fences, inspection, faults); reconnects after a restart. */
  admin: pg.Pool;
  /** Only for the embedded server: stop it and start it again on the same port and data. */
  restart: ((downMs: number) => Promise<void>) | undefined;
  close(): Promise<void>;
}

export const ADMIN_APPLICATION_NAME = 'pgcache-harness-admin';

/** `DATABASE_URL` if set, otherwise a fresh embedded server that `close()` stops and deletes. */
export async function openHarnessDatabase(): Promise<HarnessDatabase> {
  const fromEnv = process.env.DATABASE_URL;
  const embedded = fromEnv ? undefined : await startEmbeddedPostgres();
  const url = fromEnv ?? (embedded?.url as string);
  const admin = new pg.Pool({
    connectionString: withUrlParameter(url, 'application_name', ADMIN_APPLICATION_NAME),
    max: 3,
  });
  // Idle connections die when a fault restarts the server; the pool replaces them on the next query.
  admin.on('error', () => undefined);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await admin.end().catch(() => undefined);
      await embedded?.stop();
    })();
    return closing;
  };
  try {
    const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
    return {
      url,
      source: fromEnv ? 'DATABASE_URL' : 'embedded',
      serverVersion: rows[0]?.server_version ?? 'unknown',
      admin,
      restart: embedded ? (downMs) => embedded.restart(downMs) : undefined,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
