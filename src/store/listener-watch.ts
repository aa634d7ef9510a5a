import { randomUUID } from 'node:crypto';
import type { TriggerState } from '../adapter/postgres-adapter.js';
import { ConnectionError, type PostgresCacheError, SchemaError, toCacheError } from '../errors.js';
import type { BackoffOptions } from '../notify/backoff.js';
import { type CacheChange, decodeChannelMessage } from '../notify/change-event.js';
import type { PgListener } from '../notify/listener.js';
import { ChannelCheck } from './channel-check.js';
import type { CacheStats } from './stats.js';

/** What a cache gives the watch of its listener, and what the watch tells it. */
export interface ListenerWatchHost {
  /** The channel the cache listens on (its `notifyChannel`). */
  channel: string;
  /** The cache table, as error messages name it. */
  table: string;
  /** The id of the cache's own start: the re-point notice it sent itself needs no check. */
  startId: string;
  /** Where the cache table's trigger sends its events now, and the stamp of its triggers. */
  triggerState: () => Promise<TriggerState>;
  /** NOTIFYs the payload on the channel through the cache's pool. */
  sendProbe: (payload: string) => Promise<void>;
  /** How long a probe may take to come back on the listener, in ms. */
  probeTimeout: number;
  retry: BackoffOptions | undefined;
  /** How often a trusted L1 checks the trigger again, in ms; 0 for never. */
  checkInterval: number;
  /** Counted here: every message on the channel, and those that were not well-formed. */
  counters: CacheStats['events'];
  isClosed(): boolean;
  isTrusted(): boolean;
  /** Events reach the cache: L1 is emptied and used again. */
  trust(): void;
  /** Changes may stop reaching the cache: L1 is emptied and bypassed. Returns whether it was trusted until now. */
  distrust(): boolean;
  /** Empties L1: changes may have gone unheard. */
  flush(): void;
  apply(change: CacheChange): void;
  /** The first check of where events go has answered, or none will come now. */
  firstCheckDone(): void;
  reportError(error: PostgresCacheError): void;
}

export interface ListenerWatch {
  /** Stops watching: no more checks, nor handlers on the shared listener. */
  stop(): void;
  /** Resolves once the cache's LISTEN is dropped (the connection stays while other caches use it). */
  unlisten(): Promise<void>;
}

/**
 * Decides when a cache's L1 may be trusted: while the shared listener is connected, LISTEN on the cache's channel
 * is in place, and the table's trigger notifies that channel (a process with another `notifyChannel` re-points
 * it). Hands the change events that arrive to the cache.
 */
export function watchListener(listener: PgListener, host: ListenerWatchHost): ListenerWatch {
  // One listener serves every cache of the process: each adds these three, and removes them on disconnect.
  listener.setMaxListeners(0);
  const { channel } = host;
  // Set by a (re)connect and by a notice: changes may have gone unheard, so the answer empties L1 even
  // when it says yes. The periodic checks leave a trusted L1 alone, and report only a change to no.
  let asked = true;
  // The shared connection may be up (another cache's) while our own LISTEN is still on its way: until it
  // is in place, no answer may trust L1.
  let listeningHere = false;
  // The triggers' stamp at the last answer: a trigger disabled and enabled again between two checks leaves
  // the same answer, but not the same stamp, and changes made meanwhile reached no L1.
  let lastStamp: string | undefined;
  const probes = new Map<string, { arrived: () => void; lost: (error: Error) => void }>();
  /**
   * The listener may hear another database than the pool writes to (a `listenerConnectionString` that names
   * another, or PgBouncer in transaction mode, where LISTEN does not stay): a probe sent through the pool must
   * come back on the listener before an answer may trust L1. Its time counts from when the pool has sent it
   * (a busy pool delays the sending, not the delivery).
   */
  const proveDelivery = async () => {
    if (!listener.connected) throw new ConnectionError('the listener is not connected');
    const id = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const arrival = new Promise<void>((arrived, lost) => probes.set(id, { arrived, lost }));
    // Awaited below only once the probe is sent.
    arrival.catch(() => undefined);
    try {
      await host.sendProbe(JSON.stringify({ op: 'probe', id }));
      timer = setTimeout(
        () => probes.get(id)?.lost(lostProbe(channel, host.probeTimeout)),
        host.probeTimeout,
      );
      timer.unref();
      await arrival;
    } finally {
      clearTimeout(timer);
      probes.delete(id);
    }
  };
  const check = new ChannelCheck({
    expected: channel,
    read: async () => {
      const state = await host.triggerState();
      // Only an answer that may trust L1 needs the proof: a periodic check of a trusted L1 sends no probe.
      if (state.channel === channel && (asked || !host.isTrusted())) await proveDelivery();
      return state;
    },
    onAnswer: (matches, { channel: actual, stamp }) => {
      if (host.isClosed() || !listener.connected || !listeningHere) return;
      host.firstCheckDone();
      const askedFor = asked;
      asked = false;
      const altered = stamp !== lastStamp;
      lastStamp = stamp;
      if (matches) {
        if (askedFor || altered || !host.isTrusted()) host.trust();
        return;
      }
      const wasTrusted = host.distrust();
      if (askedFor || wasTrusted) host.reportError(notOurChannel(host.table, channel, actual));
    },
    onError: (error) => host.reportError(toCacheError(error, 'checking where change events go')),
    retry: host.retry,
  });
  const ask = () => {
    // A handler of the flush before it may have disconnected the cache: a check started now would retry forever.
    if (host.isClosed()) return;
    asked = true;
    check.start();
  };
  const connected = () => {
    // Whatever happened while we were not listening is unknown: L1 starts afresh, once events reach us.
    host.flush();
    ask();
  };
  const recheck =
    host.checkInterval > 0
      ? setInterval(() => {
          if (listener.connected && listeningHere && !host.isClosed()) check.start();
        }, host.checkInterval)
      : undefined;
  recheck?.unref();
  const disconnected = () => {
    check.cancel();
    // A probe sent before cannot come back now: the check waiting for it gives way to the next one.
    for (const { lost } of probes.values()) lost(new ConnectionError('the listener was disconnected'));
    host.distrust();
  };
  const failed = (error: Error) => host.reportError(toCacheError(error, 'listener'));
  listener.on('connected', connected);
  listener.on('disconnected', disconnected);
  listener.on('error', failed);

  const receive = (payload: string | undefined) => {
    host.counters.received++;
    const message = decodeChannelMessage(payload);
    if (!message) {
      host.counters.ignored++;
    } else if (message.op === 'probe') {
      probes.get(message.id)?.arrived();
    } else if (message.op === 'repoint') {
      // Our own start's notice: the check it needs ran already, after that start's commit.
      if (message.by === host.startId) return;
      // The trigger may have moved away from our channel: L1 is bypassed until a check says otherwise. One
      // that names our channel cannot have moved it away; the check still runs (and empties L1 if trusted).
      if (message.to !== channel) host.distrust();
      ask();
    } else {
      host.apply(message);
    }
  };
  const listening = listener.listen(channel, receive);
  listening
    .then(() => {
      listeningHere = true;
      // Joining a listener that was up already: L1 is trusted once LISTEN is in place on our channel too.
      if (listener.connected && !host.isClosed()) ask();
    })
    .catch((error: unknown) => {
      // init() waits for a first answer that will not come now.
      host.firstCheckDone();
      host.reportError(toCacheError(error, `listening on ${channel}`));
    });
  void listener.start();
  return {
    stop: () => {
      clearInterval(recheck);
      check.cancel();
      // init() waits for a first answer that will not come now.
      host.firstCheckDone();
      listener.off('connected', connected);
      listener.off('disconnected', disconnected);
      listener.off('error', failed);
    },
    unlisten: async () => (await listening.catch(() => undefined))?.(),
  };
}

function lostProbe(channel: string, timeoutMs: number): ConnectionError {
  return new ConnectionError(
    `a probe NOTIFYed on ${JSON.stringify(channel)} through the cache's pool did not reach its listener within ` +
      `${timeoutMs} ms: the listener hears another database, or its LISTEN does not stay (PgBouncer in ` +
      'transaction mode); give listenerConnectionString a direct URL of the same database. L1 stays bypassed',
  );
}

function notOurChannel(table: string, channel: string, actual: string | undefined): SchemaError {
  const notifies =
    actual === undefined
      ? 'is missing, or a trigger on the table is disabled or not ENABLE ALWAYS (some changes send no event)'
      : `notifies ${JSON.stringify(actual)} (a process with another notifyChannel re-pointed it)`;
  return new SchemaError(
    `the change trigger of ${table} ${notifies}, not this cache's notifyChannel ${JSON.stringify(channel)}: ` +
      'L1 is bypassed until it notifies this channel again',
  );
}
