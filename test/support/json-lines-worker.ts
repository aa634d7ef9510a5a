import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export class WorkerError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/**
 * A test script in a real child process (through tsx), driven by JSON lines: `{ id, cmd, ...args }` in on
 * stdin, `{ id, result }` or `{ id, error }` back on stdout, `{ id: 0 }` once it is ready.
 */
export class JsonLinesWorker {
  readonly ready: Promise<void>;
  readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  stderr = '';

  constructor(script: string, args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.child.stderr?.on('data', (chunk) => {
      this.stderr += chunk;
    });
    let markReady: () => void = () => undefined;
    let failReady: (error: Error) => void = () => undefined;
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    // A worker that dies before it is ready must not leave an unhandled rejection behind.
    this.ready.catch(() => undefined);
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
    this.child.on('exit', (code) => {
      const error = new Error(`worker exited (${code}); stderr: ${this.stderr}`);
      failReady(error);
      for (const waiter of this.pending.values()) waiter.reject(error);
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

  /** Asks the worker to exit; kills it if it has not within 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.call('exit').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
