import { EventEmitter } from 'node:events';
import pg from 'pg';
import { assertIdentifier } from '../adapter/identifiers.js';
import { toCacheError } from '../errors.js';
import { type BackoffOptions, backoffDelay } from './backoff.js';

export interface ListenerOptions {
  /** Where to LISTEN. Must be a direct connection (not PgBouncer in transaction mode). */
  connection: string | pg.ClientConfig;
  reconnect?: BackoffOptions;
  /** How often to prove the connection is alive with a round trip, in ms. Default 2000. */
  heartbeatInterval?: number;
  /** How long a heartbeat may take before the connection counts as dead (half-open), in ms. Default 2000. */
  heartbeatTimeout?: number;
}

export type NotificationHandler = (payload: string | undefined, channel: string) => void;

export interface ListenerEvents {
  /** LISTEN is in place on every channel. After a `disconnected`, events in between were lost. */
  connected: [];
  /** The connection is gone: events may be missed until the next `connected`. */
  disconnected: [error: Error | undefined];
  error: [error: Error];
}

type RawSocket = { destroy(): void; ref(): void; unref(): void };

/**
 * One dedicated LISTEN connection (never from a pool): any number of handlers per channel, each
 * seeing every notification. Reconnects with backoff and jitter, and finds half-open connections
 * with a heartbeat. Its socket and timers are unref'd: it never keeps a process alive by itself.
 */
export class PgListener extends EventEmitter<ListenerEvents> {
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private client: pg.Client | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private closed = false;
  private everConnected = false;
  private pendingQueries = 0;
  /** How many times the connection was lost and re-established. */
  reconnects = 0;

  constructor(private readonly options: ListenerOptions) {
    super();
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** The server process id of the LISTEN connection, for monitoring (and for tests that kill it). */
  get backendPid(): number | undefined {
    return (this.client as { processID?: number } | undefined)?.processID;
  }

  /** Starts connecting in the background; resolves once LISTEN is in place (or the listener is closed). */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.client) return Promise.resolve();
    this.connecting ??= this.connectUntilDone().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Adds a handler for a channel and LISTENs on it if this is its first. Returns the remover. */
  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    assertIdentifier(channel, 'channel');
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      const client = this.client;
      if (client)
        await this.query(client, `LISTEN "${channel}"`).catch((error: Error) => this.lose(client, error));
    }
    set.add(handler);
    return async () => {
      const current = this.handlers.get(channel);
      if (!current?.delete(handler) || current.size > 0) return;
      this.handlers.delete(channel);
      const client = this.client;
      if (client) await this.query(client, `UNLISTEN "${channel}"`).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.retryTimer?.wake();
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    clearInterval(this.heartbeat);
    if (client) {
      // Held while closing, so the process waits for the goodbye instead of exiting mid-way.
      socketOf(client)?.ref();
      await endQuietly(client);
    }
  }

  private async connectUntilDone(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.connectOnce();
        return;
      } catch (error) {
        this.report(error, 'connecting the listener');
        await this.pause(backoffDelay(attempt, this.options.reconnect));
      }
    }
  }

  private async connectOnce(): Promise<void> {
    const config =
      typeof this.options.connection === 'string'
        ? { connectionString: this.options.connection }
        : this.options.connection;
    const client = new pg.Client({ ...config, keepAlive: true, application_name: 'postgres-cache listener' });
    client.on('error', (error) => this.lose(client, error));
    client.on('end', () => this.lose(client, undefined));
    client.on('notification', (message) => this.dispatch(message.channel, message.payload));
    try {
      await client.connect();
      socketOf(client)?.unref();
      for (const channel of this.handlers.keys()) await this.query(client, `LISTEN "${channel}"`);
    } catch (error) {
      await endQuietly(client);
      throw error;
    }
    if (this.closed) {
      await endQuietly(client);
      return;
    }
    this.client = client;
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.startHeartbeat(client);
    this.emit('connected');
  }

  private startHeartbeat(client: pg.Client): void {
    const interval = this.options.heartbeatInterval ?? 2000;
    const timeout = this.options.heartbeatTimeout ?? 2000;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`listener heartbeat got no answer in ${timeout} ms`)),
          timeout,
        );
      });
      Promise.race([this.query(client, 'SELECT 1'), deadline])
        .catch((error: Error) => this.lose(client, error))
        .finally(() => clearTimeout(timer));
    }, interval);
    this.heartbeat.unref();
  }

  /** The connection is gone (error, end, or failed heartbeat): tell subscribers, then reconnect. */
  private lose(client: pg.Client | undefined, error: Error | undefined): void {
    if (!client || client !== this.client) return;
    this.client = undefined;
    clearInterval(this.heartbeat);
    // A half-open socket may never finish a polite end(); destroy it.
    socketOf(client)?.destroy();
    endQuietly(client);
    this.emit('disconnected', error);
    if (!this.closed) void this.start();
  }

  /** The socket is unref'd while idle; a query in flight holds a ref so the process waits for its answer. */
  private async query(client: pg.Client, sql: string): Promise<unknown> {
    const socket = socketOf(client);
    this.pendingQueries++;
    socket?.ref();
    try {
      return await client.query(sql);
    } finally {
      if (--this.pendingQueries === 0) socket?.unref();
    }
  }

  private dispatch(channel: string, payload: string | undefined): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(payload, channel);
      } catch (error) {
        this.report(error, `a handler for channel ${channel}`);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.retryTimer = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.retryTimer = { timer, wake };
    });
  }

  private report(error: unknown, doing: string): void {
    if (this.listenerCount('error') > 0) this.emit('error', toCacheError(error, doing));
  }
}

function socketOf(client: pg.Client): RawSocket | undefined {
  return (client as unknown as { connection?: { stream?: RawSocket } }).connection?.stream;
}

async function endQuietly(client: pg.Client): Promise<void> {
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise((resolve) => setTimeout(resolve, 1000).unref()),
  ]);
  // A server that never answered the goodbye must not leave a socket open behind us.
  socketOf(client)?.destroy();
}
