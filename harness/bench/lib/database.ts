import pg from 'pg';
import { startEmbeddedPostgres } from '../../../support/embedded-postgres.js';

/** A PostgreSQL to benchmark against, with one administrative connection for setup and inspection. */
export interface BenchDatabase {
  /** Connection URL for the subjects under test. */
  url: string;
  /** Where the server came from: the `DATABASE_URL` environment variable, or an embedded server started here. */
  source: 'DATABASE_URL' | 'embedded';
  /** `server_version` as the server reports it, e.g. `15.20 (Debian 15.20-0+deb12u1)`. */
  serverVersion: string;
  /** Runs one statement on the administrative connection (never on a subject's pool). */
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<Row[]>;
  /** Closes the administrative connection and stops the embedded server if one was started. Idempotent. */
  close(): Promise<void>;
}

/** The `application_name` of the administrative connection, so inspection queries can leave it out. */
export const ADMIN_APPLICATION_NAME = 'bench_admin';

/**
 * Uses `DATABASE_URL` when it is set, otherwise starts an embedded server (stopped again by `close()`,
 * or on SIGINT/SIGTERM so an interrupted run leaves no server behind).
 */
export async function openBenchDatabase(): Promise<BenchDatabase> {
  const fromEnv = process.env.DATABASE_URL;
  const embedded = fromEnv ? undefined : await startEmbeddedPostgres();
  const url = fromEnv ?? embedded?.url;
  if (!url) throw new Error('no database: DATABASE_URL is not set and no embedded server started');

  const admin = new pg.Client({ connectionString: url, application_name: ADMIN_APPLICATION_NAME });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await admin.end().catch(() => undefined);
      await embedded?.stop();
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the database\n`);
    void close().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    admin.on('error', () => undefined);
    await admin.connect();
    const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
    return {
      url,
      source: fromEnv ? 'DATABASE_URL' : 'embedded',
      serverVersion: rows[0]?.server_version ?? 'unknown',
      async query<Row extends pg.QueryResultRow>(text: string, values?: unknown[]) {
        return (await admin.query<Row>(text, values)).rows;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The same URL with one query parameter set (e.g. a distinct `application_name`). */
export function withUrlParameter(url: string, name: string, value: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set(name, value);
  return parsed.toString();
}
