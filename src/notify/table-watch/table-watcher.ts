import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { assertIdentifier } from '../../adapter/identifiers.js';
import { InvalidOptionError, type PostgresCacheError, toCacheError } from '../../errors.js';
import { reportError } from '../../report-error.js';
import type { BackoffOptions } from '../backoff.js';
import type { PgListener } from '../listener.js';
import { type ListenerLease, leaseListener } from '../shared-listener.js';
import { compileFilter, type TableEventFilter } from './filter.js';
import { type WatchLocation, watchNames } from './names.js';
import { decodeTableEvent, type TableEvent } from './table-event.js';

export interface TableWatcherOptions extends WatchLocation {
  /** Where to LISTEN: a direct connection (not PgBouncer in transaction mode). Default `DATABASE_URL`. */
  connection?: string | pg.ClientConfig;
  /** Channel the watch triggers notify on. Default `<cacheSchema>_<tablePrefix>table_changes`. */
  channel?: string;
  reconnect?: BackoffOptions;
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
}

export interface TableSubscriptionOptions extends TableEventFilter {
  /** Called with every matching event. A throw or a rejection is reported and counted, never fatal. */
  onEvent: (event: TableEvent) => void | Promise<void>;
  /** The listener connection is gone: events are missed from now until `onReconnected`. */
  onDisconnected?: (error: Error | undefined) => void;
  /** LISTEN is back after a loss. What happened in between is unknown: treat what depends on events as stale. */
  onReconnected?: () => void;
}

export interface TableSubscription {
  readonly active: boolean;
  unsubscribe(): void;
}

export interface TableWatcherStats {
  /** Notifications on the channel. */
  received: number;
  /** Notifications that were not a well-formed event (dropped). */
  ignored: number;
  /** Calls of subscribers' `onEvent`. */
  delivered: number;
  /** Subscriber callbacks and predicates that threw or rejected. */
  subscriberErrors: number;
  subscribers: number;
  connected: boolean;
  /** Times LISTEN came back after a loss. */
  reconnects: number;
}

export interface TableWatcherEvents {
  event: [TableEvent];
  connected: [];
  disconnected: [error: Error | undefined];
  reconnected: [];
  error: [error: PostgresCacheError];
}

interface Subscriber {
  matches: (event: TableEvent) => boolean;
  options: TableSubscriptionOptions;
}

/**
 * Delivers table events to any number of subscribers over the process's one LISTEN connection
 * (shared with the caches through `leaseListener`). Every subscriber sees every event it matches:
 * nothing is consumed. Subscribers hear when the connection is lost and when it is back.
 */
export class TableWatcher extends EventEmitter<TableWatcherEvents> {
  readonly channel: string;
  readonly listener: PgListener;

  private readonly lease: ListenerLease;
  private readonly subscribers = new Set<Subscriber>();
  private readonly counters = { received: 0, ignored: 0, delivered: 0, subscriberErrors: 0, reconnects: 0 };
  private registering: Promise<void> | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private registered = false;
  private lost = false;
  private closed = false;
  private readonly onListenerConnected = () => this.listenerConnected();
  private readonly onListenerDisconnected = (error: Error | undefined) => this.listenerDisconnected(error);

  constructor(options: TableWatcherOptions = {}) {
    super();
    this.channel = options.channel ?? watchNames(options).defaultChannel;
    assertIdentifier(this.channel, 'channel');
    const connection = options.connection ?? process.env.DATABASE_URL;
    if (!connection) throw new InvalidOptionError('give connection, or set DATABASE_URL');
    this.lease = leaseListener({
      connection,
      reconnect: options.reconnect,
      heartbeatInterval: options.heartbeatInterval,
      heartbeatTimeout: options.heartbeatTimeout,
    });
    this.listener = this.lease.listener;
    this.listener.setMaxListeners(0);
    this.listener.on('connected', this.onListenerConnected);
    this.listener.on('disconnected', this.onListenerDisconnected);
  }

  /** True while LISTEN on the channel is in place: events are flowing. */
  get connected(): boolean {
    return this.registered && this.listener.connected && !this.closed;
  }

  get stats(): TableWatcherStats {
    return {
      ...this.counters,
      subscribers: this.subscribers.size,
      connected: this.connected,
    };
  }

  /** Starts listening; resolves once LISTEN is in place (retrying in the background until it is). */
  start(): Promise<void> {
    this.registering ??= this.listener
      .listen(this.channel, (payload) => this.receive(payload))
      .then(async (unlisten) => {
        if (this.closed) return unlisten();
        this.unlisten = unlisten;
        this.registered = true;
      });
    return this.registering.then(() => (this.closed ? undefined : this.listener.start()));
  }

  /** Adds a subscriber (and starts listening if not yet). */
  subscribe(options: TableSubscriptionOptions): TableSubscription {
    if (typeof options?.onEvent !== 'function')
      throw new InvalidOptionError('subscribe needs an onEvent function');
    const subscriber: Subscriber = { matches: compileFilter(options), options };
    this.subscribers.add(subscriber);
    this.start().catch((error: unknown) => this.report(error, `listening on ${this.channel}`));
    const subscribers = this.subscribers;
    return {
      get active() {
        return subscribers.has(subscriber);
      },
      unsubscribe: () => {
        subscribers.delete(subscriber);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribers.clear();
    this.listener.off('connected', this.onListenerConnected);
    this.listener.off('disconnected', this.onListenerDisconnected);
    // Only the registration is awaited: waiting for a connection could take as long as an outage.
    await this.registering?.catch(() => undefined);
    await this.unlisten?.().catch(() => undefined);
    await this.lease.release();
  }

  private receive(payload: string | undefined): void {
    if (this.closed) return;
    this.counters.received++;
    const event = decodeTableEvent(payload);
    if (!event) {
      this.counters.ignored++;
      return;
    }
    this.guarded(() => this.emit('event', event), 'an "event" listener');
    for (const subscriber of [...this.subscribers]) {
      this.guarded(() => {
        if (!subscriber.matches(event)) return;
        this.counters.delivered++;
        const outcome = subscriber.options.onEvent(event);
        if (outcome instanceof Promise) {
          outcome.catch((error: unknown) => {
            this.counters.subscriberErrors++;
            this.report(error, 'a table event subscriber');
          });
        }
      }, 'a table event subscriber');
    }
  }

  private listenerDisconnected(error: Error | undefined): void {
    if (!this.registered || this.closed) return;
    this.lost = true;
    this.guarded(() => this.emit('disconnected', error), 'a "disconnected" listener');
    for (const subscriber of [...this.subscribers]) {
      this.guarded(() => subscriber.options.onDisconnected?.(error), 'an onDisconnected callback');
    }
  }

  private listenerConnected(): void {
    if (!this.registered || this.closed) return;
    if (this.lost) {
      this.lost = false;
      this.counters.reconnects++;
      this.guarded(() => this.emit('reconnected'), 'a "reconnected" listener');
      for (const subscriber of [...this.subscribers]) {
        this.guarded(() => subscriber.options.onReconnected?.(), 'an onReconnected callback');
      }
    }
    this.guarded(() => this.emit('connected'), 'a "connected" listener');
  }

  private guarded(work: () => void, what: string): void {
    try {
      work();
    } catch (error) {
      this.counters.subscriberErrors++;
      this.report(error, what);
    }
  }

  private report(error: unknown, doing: string): void {
    reportError(this, toCacheError(error, doing));
  }
}
