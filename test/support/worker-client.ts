import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export class WorkerError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Drives test/support/processes/cache-worker.ts: one PostgresCache in a real child process. */
export class CacheWorker {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  readonly ready: Promise<void>;
  readonly child: ChildProcess;
  stderr = '';

  constructor(schema: string, env: Record<string, string> = {}) {
    const script = fileURLToPath(new URL('./processes/cache-worker.ts', import.meta.url));
    this.child = spawn(process.execPath, ['--import', 'tsx', script, schema], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.child.stderr?.on('data', (chunk) => {
      this.stderr += chunk;
    });
    let markReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const message = JSON.parse(line) as {
        id: number;
        result?: unknown;
        error?: { code?: string; message: string };
      };
      if (message.id === 0) return markReady();
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) waiter?.reject(new WorkerError(message.error.code, message.error.message));
      else waiter?.resolve(message.result);
    });
    this.child.on('exit', () => {
      for (const waiter of this.pending.values())
        waiter.reject(new Error(`worker exited; stderr: ${this.stderr}`));
      this.pending.clear();
    });
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin?.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.call('exit').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export async function startWorkers(
  schema: string,
  count: number,
  env: Record<string, string> = {},
): Promise<CacheWorker[]> {
  const workers = Array.from({ length: count }, () => new CacheWorker(schema, env));
  await Promise.all(workers.map((worker) => worker.ready));
  await Promise.all(workers.map((worker) => worker.call('init')));
  return workers;
}
