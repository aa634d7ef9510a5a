import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CoordinatorMessage, WorkerConfig, WorkerMessage } from './protocol.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url));
const STDERR_TAIL_CHARS = 4000;

type Batch = Extract<WorkerMessage, { type: 'batch' }>;
type Reply<T extends WorkerMessage['type']> = Extract<WorkerMessage, { type: T }>;

interface Waiter {
  type: WorkerMessage['type'];
  resolve: (message: WorkerMessage) => void;
  reject: (error: Error) => void;
}

/** One client: a real child process running worker.ts through tsx, spoken to over IPC. */
export class ClientProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private stderrTail = '';
  private readonly inbox: WorkerMessage[] = [];
  private readonly waiters = new Set<Waiter>();
  private failure: Error | undefined;

  constructor(
    readonly config: WorkerConfig,
    onBatch: (client: ClientProcess, batch: Batch) => void,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], {
      env: { ...process.env, HARNESS_WORKER: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL_CHARS);
    });
    this.child.on('message', (message: WorkerMessage) => {
      if (message.type === 'batch') return onBatch(this, message);
      if (message.type === 'failed')
        return this.fail(new Error(`client ${config.index}: ${message.message}`));
      const waiter = [...this.waiters].find((candidate) => candidate.type === message.type);
      if (waiter) {
        this.waiters.delete(waiter);
        waiter.resolve(message);
      } else {
        this.inbox.push(message);
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.fail(new Error(`client ${config.index} exited (${signal ?? code})${this.describeStderr()}`));
        resolve();
      });
    });
  }

  get index(): number {
    return this.config.index;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  send(message: CoordinatorMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  /** The next message of a type (including one that came before the call), or an error on exit or timeout. */
  expect<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Reply<T>> {
    const queued = this.inbox.findIndex((message) => message.type === type);
    if (queued >= 0) return Promise.resolve(this.inbox.splice(queued, 1)[0] as Reply<T>);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(`client ${this.index}: no '${type}' within ${timeoutMs} ms${this.describeStderr()}`),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        type,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message as Reply<T>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Asks the client to exit; kills it if it has not after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.send({ type: 'exit' });
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters) waiter.reject(this.failure);
    this.waiters.clear();
  }

  private describeStderr(): string {
    const tail = this.stderrTail.trim();
    return tail ? `; its stderr ends with:\n${tail}` : '';
  }
}

/** Waits for the next message of a type from every client. */
export function everyReply<T extends WorkerMessage['type']>(
  clients: ClientProcess[],
  type: T,
  timeoutMs: number,
): Promise<Array<Reply<T>>> {
  return Promise.all(clients.map((client) => client.expect(type, timeoutMs)));
}
