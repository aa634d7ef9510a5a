import { EventEmitter } from 'node:events';
import pg from 'pg';
import { assertIdentifier } from '../adapter/identifiers.js';
import { ConnectionError, toCacheError } from '../errors.js';
import { backoffDelay } from './backoff.js';
import { assertListenerOptions, type ListenerOptions } from './listener-options.js';

export type { ListenerOptions } from './listener-options.js';

export type NotificationHandler = (payload: string | undefined, channel: string) => void;

export interface ListenerEvents {
  /** LISTEN is in place on every channel. After a `disconnected`, events in between were lost. */
  connected: [];
  /** The connection is gone: events may be missed until the next `connected`. */
  disconnected: [error: Error | undefined];
  error: [error: Error];
}

type RawSocket = { destroy(): void; ref(): void; unref(): void };

/** A connection lost within this long of being made counts as a failed attempt (see `connectUntilDone`). */
const QUICK_LOSS_MS = 1000;

/**
 * One dedicated LISTEN connection (never from a pool): any number of handlers per channel, each
 * seeing every notification. Reconnects with backoff and jitter, and finds half-open connections
 * with a heartbeat. Its socket and timers are unref'd while idle: it never keeps a process alive by itself.
 *
 * Subscribers (of `connected`, `disconnected`, `error` and of channels) are called after the listener's
 * state is settled, each on its own: one that throws is reported as an `error` and changes nothing.
 */
export class PgListener extends EventEmitter<ListenerEvents> {
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  /** The LISTEN of a channel while it is on its way: later handlers of that channel wait for it too. */
  private readonly listensInFlight = new Map<string, Promise<unknown>>();
  private client: pg.Client | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  /** Ends the connection attempt in flight at once (its socket destroyed). */
  private abortAttempt: ((error: Error) => void) | undefined;
  private retryTimer: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private everConnected = false;
  /** When the current connection was adopted, and how many in a row were lost soon after (see `lose`). */
  private connectedAt = 0;
  private quickLosses = 0;
  /** Per connection: its statements not yet answered, and the last one queued. */
  private readonly lines = new WeakMap<pg.Client, { unanswered: number; last: Promise<unknown> }>();
  /** How many times the connection was lost and re-established. */
  reconnects = 0;

  constructor(private readonly options: ListenerOptions) {
    super();
    assertListenerOptions(options);
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
    this.connecting ??= this.connectUntilDone().then(
      (client) => {
        // Cleared before `connected` is said, so a loss heard meanwhile starts a new attempt.
        this.connecting = undefined;
        if (client && client === this.client) this.announce('connected');
      },
      () => {
        this.connecting = undefined;
      },
    );
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
      if (client) {
        const listening = this.roundTrip(client, `LISTEN "${channel}"`);
        this.listensInFlight.set(channel, listening);
        try {
          await listening;
        } finally {
          if (this.listensInFlight.get(channel) === listening) this.listensInFlight.delete(channel);
        }
      }
      set.add(handler);
    } else {
      // Added before waiting: a last handler removed meanwhile must see this one, and keep the set and its
      // LISTEN, or this one would sit in a set nobody LISTENs for, hearing nothing from then on.
      set.add(handler);
      try {
        await this.listensInFlight.get(channel);
      } catch (error) {
        set.delete(handler);
        throw error;
      }
    }
    return async () => {
      const current = this.handlers.get(channel);
      if (!current?.delete(handler) || current.size > 0) return;
      this.handlers.delete(channel);
      const client = this.client;
      if (client) await this.roundTrip(client, `UNLISTEN "${channel}"`);
    };
  }

  close(): Promise<void> {
    // A second call resolves when the first has closed the connection, not before.
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    this.retryTimer?.wake();
    // An attempt may be stuck on a server that never answers: end it rather than wait for it.
    this.abortAttempt?.(new ConnectionError('the listener was closed'));
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    clearInterval(this.heartbeat);
    if (client) await endQuietly(client);
  }

  /**
   * Connects until it works or the listener is closed; returns the client it adopted, if any. A connection
   * lost soon after it was made counts as a failed attempt: while that keeps happening (a proxy or a
   * watchdog that drops sessions) the wait before the next one grows, with jitter, as it does while
   * attempts fail. After a connection that lived, the first attempt is made at once.
   */
  private async connectUntilDone(): Promise<pg.Client | undefined> {
    let attempt = this.quickLosses;
    if (attempt > 0) await this.pause(backoffDelay(attempt - 1, this.options.reconnect));
    for (; !this.closed; attempt++) {
      try {
        return await this.connectOnce();
      } catch (error) {
        if (this.closed) return undefined;
        this.report(error, 'connecting the listener');
        await this.pause(backoffDelay(attempt, this.options.reconnect));
      }
    }
    return undefined;
  }

  /** One attempt, within `connectTimeout`. Adopts the client only once LISTEN is in place; tells no one. */
  private async connectOnce(): Promise<pg.Client | undefined> {
    const config =
      typeof this.options.connection === 'string'
        ? { connectionString: this.options.connection }
        : this.options.connection;
    // A pool's settings (pg-pool) keep the password from enumeration, out of stack traces: a spread drops it.
    const password = 'password' in config ? { password: config.password } : {};
    const client = new pg.Client({
      ...config,
      ...password,
      keepAlive: true,
      application_name: 'postgres-cache listener',
    });
    client.on('error', (error) => this.lose(client, error));
    client.on('end', () => this.lose(client, undefined));
    client.on('notification', (message) => this.dispatch(message.channel, message.payload));

    const timeout = this.options.connectTimeout ?? 5000;
    let step = 'the connection';
    let abort: (error: Error) => void = () => undefined;
    const aborted = new Promise<never>((_, reject) => {
      abort = (error) => {
        // A server that accepted the socket but says nothing would hold it (and the process) forever.
        socketOf(client)?.destroy();
        reject(error);
      };
    });
    const deadline = setTimeout(
      () => abort(new ConnectionError(`connecting the listener: no answer to ${step} in ${timeout} ms`)),
      timeout,
    );
    deadline.unref();
    this.abortAttempt = abort;
    const listened = new Set<string>();
    const listenOnEvery = () =>
      this.listenOnEvery(client, listened, (channel) => {
        step = `LISTEN "${channel}"`;
      });
    const establish = async () => {
      await client.connect();
      socketOf(client)?.unref();
      await listenOnEvery();
    };
    try {
      await Promise.race([establish(), aborted]);
      // A listen() may come in while the race settles: the last look and the adoption below run in one go.
      while (this.unlistened(listened) !== undefined) await Promise.race([listenOnEvery(), aborted]);
    } catch (error) {
      this.abortAttempt = undefined;
      clearTimeout(deadline);
      await endQuietly(client);
      throw error;
    }
    this.abortAttempt = undefined;
    clearTimeout(deadline);
    if (this.closed) {
      await endQuietly(client);
      return undefined;
    }
    // Everything settled before anyone hears of it.
    this.client = client;
    this.connectedAt = Date.now();
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.startHeartbeat(client);
    return client;
  }

  /** A channel with handlers that `listened` lacks. */
  private unlistened(listened: Set<string>): string | undefined {
    for (const channel of this.handlers.keys()) if (!listened.has(channel)) return channel;
    return undefined;
  }

  /** LISTENs on every channel with handlers that `listened` lacks, until none is left (more may come meanwhile). */
  private async listenOnEvery(client: pg.Client, listened: Set<string>, next: (channel: string) => void) {
    for (
      let channel = this.unlistened(listened);
      channel !== undefined;
      channel = this.unlistened(listened)
    ) {
      next(channel);
      await this.query(client, `LISTEN "${channel}"`);
      listened.add(channel);
    }
  }

  private startHeartbeat(client: pg.Client): void {
    const interval = this.options.heartbeatInterval ?? 2000;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => void this.roundTrip(client, 'SELECT 1'), interval);
    this.heartbeat.unref();
  }

  /**
   * One statement on the live connection. No answer within `heartbeatTimeout` means the connection is
   * dead (half-open): it is dropped, and the reconnect LISTENs on every channel again.
   */
  private async roundTrip(client: pg.Client, sql: string): Promise<void> {
    const timeout = this.options.heartbeatTimeout ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      const fail = () => reject(new ConnectionError(`the listener got no answer to ${sql} in ${timeout} ms`));
      // After a stall of the event loop (a long GC, synchronous work) timers run before the socket is read:
      // the answer may be waiting. One turn of the loop reads it first; only then is the connection dead.
      timer = setTimeout(() => setImmediate(fail), timeout);
      timer.unref();
    });
    try {
      await Promise.race([this.query(client, sql), deadline]);
    } catch (error) {
      this.lose(client, error instanceof Error ? error : new Error(String(error)));
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connection is gone (error, end, or failed round trip): reconnect, then tell subscribers. */
  private lose(client: pg.Client | undefined, error: Error | undefined): void {
    if (!client || client !== this.client) return;
    this.client = undefined;
    this.quickLosses = Date.now() - this.connectedAt < QUICK_LOSS_MS ? this.quickLosses + 1 : 0;
    clearInterval(this.heartbeat);
    // A half-open socket may never finish a polite end(); destroy it.
    socketOf(client)?.destroy();
    void endQuietly(client);
    // Scheduled before anyone is told, so no subscriber can keep it from happening.
    if (!this.closed) void this.start();
    this.announce('disconnected', error);
  }

  /**
   * One statement at a time on the connection: pg queues one sent while another is in flight, but
   * warns that it will stop doing so. The socket is unref'd while idle; a statement not yet answered
   * holds a ref so the process waits for its answer.
   */
  private async query(client: pg.Client, sql: string): Promise<unknown> {
    const socket = socketOf(client);
    const line = this.lines.get(client) ?? { unanswered: 0, last: Promise.resolve() };
    this.lines.set(client, line);
    line.unanswered++;
    socket?.ref();
    const answer = line.last.then(() => client.query(sql));
    line.last = answer.catch(() => undefined);
    try {
      return await answer;
    } finally {
      if (--line.unanswered === 0) socket?.unref();
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

  /**
   * Calls each subscriber on its own, as `emit` would: one that throws is reported, and neither keeps the
   * others (other caches and watchers share this listener) from hearing nor reaches pg or the reconnect loop.
   */
  private announce<K extends 'connected' | 'disconnected'>(event: K, ...args: ListenerEvents[K]): void {
    for (const listener of this.rawListeners(event)) {
      try {
        Reflect.apply(listener, this, args);
      } catch (error) {
        this.report(error, `a "${event}" listener of the LISTEN connection`);
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

  /** Says `error` to whoever listens; never throws, even when an `error` listener does. */
  private report(error: unknown, doing: string): void {
    if (this.listenerCount('error') === 0) return;
    const typed = toCacheError(error, doing);
    for (const listener of this.rawListeners('error')) {
      try {
        Reflect.apply(listener, this, [typed]);
      } catch {
        // An error listener that throws has nowhere left to report to.
      }
    }
  }
}

function socketOf(client: pg.Client): RawSocket | undefined {
  return (client as unknown as { connection?: { stream?: RawSocket } }).connection?.stream;
}

async function endQuietly(client: pg.Client): Promise<void> {
  // Held while closing, so the process waits for the goodbye instead of exiting mid-way.
  socketOf(client)?.ref();
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise((resolve) => setTimeout(resolve, 1000).unref()),
  ]);
  // A server that never answered the goodbye must not leave a socket open behind us.
  socketOf(client)?.destroy();
}
