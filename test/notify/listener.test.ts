import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresCacheError } from '../../src/errors.js';
import { type ListenerOptions, PgListener } from '../../src/notify/listener.js';
import { runScript } from '../support/child.js';
import { databaseUrl, eventually, sleep } from '../support/database.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

// Real PostgreSQL; a TCP proxy in front of it plays the server that accepts and never answers.
// Heartbeats run, but none of these tests is about them: a generous timeout, so that a stalled machine
// does not reconnect in the middle of a test.
const fast: Partial<ListenerOptions> = {
  reconnect: { initialDelay: 50, maxDelay: 100 },
  heartbeatInterval: 200,
  heartbeatTimeout: 10_000,
};

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  // All at once: a listener stuck on a proxy must not wait for the proxy to be closed after it.
  await Promise.all(cleanups.map((cleanup) => cleanup().catch(() => undefined)));
  cleanups = [];
});

async function proxy(mode: TcpProxy['mode']): Promise<TcpProxy> {
  const started = await startTcpProxy(databaseUrl(), mode);
  cleanups.push(() => started.close());
  return started;
}

function listener(options: ListenerOptions): { listener: PgListener; errors: PostgresCacheError[] } {
  const created = new PgListener(options);
  const errors: PostgresCacheError[] = [];
  created.on('error', (error) => errors.push(error as PostgresCacheError));
  cleanups.push(() => created.close());
  return { listener: created, errors };
}

async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  cleanups.push(() => client.end());
  return client;
}

beforeAll(async () => {
  // Proves the database is there before any timing below depends on it.
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  await client.end();
});

describe('PgListener against a server that does not answer', () => {
  it('reports a typed error for a silent connect, keeps retrying, and connects once the server answers', async () => {
    const silent = await proxy('silent');
    const { listener: l, errors } = listener({ connection: silent.url, connectTimeout: 1000, ...fast });
    let connected = 0;
    l.on('connected', () => connected++);
    void l.start();

    expect(await eventually(() => errors.length >= 2 && silent.accepted >= 2)).toBe(true);
    expect(errors[0]?.code).toBe('ERR_PGCACHE_CONNECTION');
    expect(errors[0]?.message).toMatch(/no answer to the connection in 1000 ms/);
    expect(connected).toBe(0);
    // Each timed-out attempt's socket was destroyed: at most the attempt in flight is open.
    expect(await eventually(() => silent.open <= 1)).toBe(true);

    silent.mode = 'forward';
    expect(await eventually(() => connected === 1)).toBe(true);
    expect(l.connected).toBe(true);
  });

  it('gives up on a LISTEN that gets no answer, and LISTENs once the server answers', async () => {
    const mute = await proxy('drop-queries');
    const { listener: l, errors } = listener({ connection: mute.url, connectTimeout: 1500, ...fast });
    const heard: (string | undefined)[] = [];
    await l.listen('listener_test_mute', (payload) => heard.push(payload));
    void l.start();

    // A connection that a loaded machine makes too slowly fails as such first; LISTEN's own failure follows.
    const listenFailed = () => errors.find((error) => /no answer to LISTEN/.test(error.message));
    expect(await eventually(() => listenFailed() !== undefined && errors.length >= 2)).toBe(true);
    expect(listenFailed()?.code).toBe('ERR_PGCACHE_CONNECTION');
    expect(listenFailed()?.message).toMatch(/no answer to LISTEN "listener_test_mute" in 1500 ms/);
    expect(l.connected).toBe(false);

    mute.mode = 'forward';
    expect(await eventually(() => l.connected)).toBe(true);
    const client = await admin();
    await client.query(`NOTIFY listener_test_mute, 'hello'`);
    expect(await eventually(() => heard.includes('hello'))).toBe(true);
  });

  it('close() returns at once while an attempt is stuck', async () => {
    const silent = await proxy('silent');
    const { listener: l } = listener({ connection: silent.url, connectTimeout: 60_000, ...fast });
    const starting = l.start();
    expect(await eventually(() => silent.accepted === 1)).toBe(true);
    await sleep(200);

    const started = Date.now();
    const outcome = await Promise.race([l.close().then(() => 'closed'), sleep(3000).then(() => 'pending')]);
    expect(outcome).toBe('closed');
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await Promise.race([starting.then(() => 'settled'), sleep(1000).then(() => 'pending')])).toBe(
      'settled',
    );
    expect(await eventually(() => silent.open === 0)).toBe(true);
  });

  it('leaves nothing that keeps the process alive after close() while stuck', async () => {
    const silent = await proxy('silent');
    const result = await runScript('listener-close-stuck.ts', [silent.url], {}, 15_000);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    const ms = Number(/closed in (\d+) ms/.exec(result.stdout)?.[1]);
    expect(ms).toBeLessThan(1500);
  }, 30_000);
});

describe('PgListener heartbeats', () => {
  it('sends one statement at a time: LISTENs in a burst and heartbeats queue, and pg has nothing to warn about', async () => {
    // In a process of its own: pg warns once per process, and the statement queue must be fresh.
    const result = await runScript('listener-burst.ts', [databaseUrl(), '40'], {}, 30_000);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ warnings: [], heard: 40 });
  }, 40_000);
  it('find a connection that stopped answering (half-open), drop it, and connect again', async () => {
    const front = await proxy('forward');
    const { listener: l } = listener({
      connection: front.url,
      reconnect: { initialDelay: 50, maxDelay: 100 },
      heartbeatInterval: 100,
      heartbeatTimeout: 1000,
    });
    const causes: Array<Error | undefined> = [];
    l.on('disconnected', (cause) => causes.push(cause));
    const heard: string[] = [];
    await l.listen('listener_test_half_open', (payload) => heard.push(payload ?? ''));
    await l.start();
    const pid = l.backendPid;
    // The socket stays open and nothing more comes through it: no error, no end, only silence.
    front.stall();

    expect(await eventually(() => causes.length === 1)).toBe(true);
    expect(causes[0]?.message).toMatch(/no answer to SELECT 1 in 1000 ms/);
    expect(await eventually(() => l.connected)).toBe(true);
    expect(l.backendPid).not.toBe(pid);
    expect(l.reconnects).toBe(1);
    const client = await admin();
    await client.query(`NOTIFY listener_test_half_open, 'after'`);
    expect(await eventually(() => heard.includes('after'))).toBe(true);
  });

  it('do not count a stall of this process as a dead connection: the answer waiting is read first', async () => {
    const { listener: l } = listener({
      connection: databaseUrl(),
      reconnect: { initialDelay: 50, maxDelay: 100 },
      heartbeatInterval: 100,
      heartbeatTimeout: 1000,
    });
    let disconnected = 0;
    l.on('disconnected', () => disconnected++);
    await l.start();
    // Blocks the event loop for longer than heartbeatTimeout just after a heartbeat went out, as a long GC
    // pause or synchronous work would: the server answers meanwhile, and on waking the deadline is due in
    // the timers phase, which comes before the socket is read.
    const query = pg.Client.prototype.query;
    let stalls = 0;
    (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (
      this: pg.Client,
      ...args: unknown[]
    ) {
      const sent = (query as (...a: unknown[]) => unknown).apply(this, args);
      if (args[0] === 'SELECT 1' && stalls < 3) {
        stalls++;
        setImmediate(() => {
          const until = Date.now() + 1300;
          while (Date.now() < until) {
            // busy: nothing else runs
          }
        });
      }
      return sent;
    };
    try {
      expect(await eventually(() => stalls === 3)).toBe(true);
      await sleep(1200);
    } finally {
      pg.Client.prototype.query = query;
    }
    expect(disconnected).toBe(0);
    expect(l.reconnects).toBe(0);
    expect(l.connected).toBe(true);
  });
});

describe('PgListener reconnecting', () => {
  it('waits longer and longer while each connection is lost soon after it was made, as while attempts fail', async () => {
    const front = await proxy('forward');
    const { listener: flapping } = listener({
      connection: front.url,
      ...fast,
      reconnect: { initialDelay: 50, maxDelay: 2000 },
    });
    // Every connection is cut 30 ms after LISTEN is in place: a watchdog that drops sessions, say.
    const connectedAt: number[] = [];
    flapping.on('connected', () => {
      connectedAt.push(Date.now());
      setTimeout(() => front.dropAll(), 30);
    });
    await flapping.listen('flapping', () => undefined);
    await flapping.start();
    await sleep(1500);
    // At once each time, it would have connected some 30 times by now.
    expect(connectedAt.length).toBeGreaterThanOrEqual(3);
    expect(connectedAt.length).toBeLessThanOrEqual(10);
    // Each gap holds the 30 ms before the drop and the pause before the next attempt, at least half of the
    // backoff for the losses so far (equal jitter): 25, 50, 100 ms… A busy machine only lengthens them (a timer may
    // fire a millisecond early by Date.now()).
    const gaps = connectedAt.slice(1).map((at, i) => at - (connectedAt[i] as number));
    gaps.forEach((gap, losses) => {
      expect(gap).toBeGreaterThanOrEqual(30 + Math.min(2000, 50 * 2 ** losses) / 2 - 2);
    });
  });
});

describe('PgListener reconnecting after a connection that lived', () => {
  it('connects again at once, without the wait a failed attempt gets', async () => {
    const front = await proxy('forward');
    // A wait of its own would be 4 s at least; a reconnect on a busy machine has taken over 1 s.
    const { listener: steady } = listener({
      connection: front.url,
      ...fast,
      reconnect: { initialDelay: 8000, maxDelay: 8000 },
    });
    await steady.listen('steady', () => undefined);
    await steady.start();
    await sleep(1100);
    const back = new Promise<number>((resolve) => {
      const lostAt = Date.now();
      steady.once('connected', () => resolve(Date.now() - lostAt));
    });
    front.dropAll();
    expect(await back).toBeLessThan(3000);
  });
});

describe('PgListener with subscribers that throw', () => {
  it('still reconnects when a "disconnected" subscriber throws, and the others still hear it', async () => {
    const { listener: l, errors } = listener({ connection: databaseUrl(), ...fast });
    l.on('disconnected', () => {
      throw new Error('bug in a disconnected subscriber');
    });
    let disconnected = 0;
    l.on('disconnected', () => disconnected++);
    let connected = 0;
    l.on('connected', () => connected++);
    await l.start();
    const pid = l.backendPid;
    expect(pid).toBeTypeOf('number');

    const client = await admin();
    await client.query('SELECT pg_terminate_backend($1)', [pid]);

    expect(await eventually(() => connected === 2 && l.connected)).toBe(true);
    expect(l.backendPid).not.toBe(pid);
    expect(l.reconnects).toBe(1);
    expect(disconnected).toBe(1);
    expect(errors.map((error) => error.message)).toContainEqual(
      expect.stringMatching(/bug in a disconnected subscriber/),
    );
  });

  it('opens no more connections when a "connected" subscriber throws, and stays connected', async () => {
    const front = await proxy('forward');
    const { listener: l, errors } = listener({ connection: front.url, ...fast });
    l.on('connected', () => {
      throw new Error('bug in a connected subscriber');
    });
    const client = await admin();
    const open = async () => {
      const ports = front.upstreamPorts();
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'postgres-cache listener' AND client_port = ANY($1::int[])`,
        [ports],
      );
      return rows[0]?.n ?? 0;
    };

    void l.start();
    expect(await eventually(() => l.connected)).toBe(true);
    const pid = l.backendPid;
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      counts.push(await open());
      expect(l.connected).toBe(true);
      expect(l.backendPid).toBe(pid);
    }
    expect(counts).toEqual([1, 1, 1, 1, 1, 1]);
    expect(front.accepted).toBe(1);
    expect(l.reconnects).toBe(0);
    expect(errors.map((error) => error.message)).toEqual([
      expect.stringMatching(/bug in a connected subscriber/),
    ]);
  });
});

describe('a second handler on a channel whose LISTEN is still on its way', () => {
  it('is added only once LISTEN is in place: a NOTIFY sent after its listen() resolves reaches it', async () => {
    const { listener: l } = listener({ connection: databaseUrl(), ...fast });
    await l.start();
    // Stands in for a slow network: the LISTEN of this one channel takes 300 ms.
    const query = pg.Client.prototype.query;
    (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (
      this: pg.Client,
      ...args: unknown[]
    ) {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
      if (text === 'LISTEN "slow_channel"') {
        return sleep(300).then(() => (query as (...a: unknown[]) => unknown).apply(this, args));
      }
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    };
    try {
      const heard: string[] = [];
      const first = l.listen('slow_channel', () => heard.push('first'));
      await sleep(20);
      await l.listen('slow_channel', (payload) => heard.push(`second:${payload}`));
      const sender = await admin();
      await sender.query(`NOTIFY slow_channel, 'x'`);
      await first;
      expect(await eventually(() => heard.includes('second:x'))).toBe(true);
    } finally {
      pg.Client.prototype.query = query;
    }
  });
});

describe('a handler added while the last one on its channel is being removed', () => {
  it('keeps the channel LISTENed: a NOTIFY after both calls reaches it', async () => {
    const { listener: l } = listener({ connection: databaseUrl(), ...fast });
    await l.start();
    const removeFirst = await l.listen('handover_channel', () => undefined);
    const heard: string[] = [];
    // The second finds the first's handlers and waits a moment; the first is removed meanwhile.
    const second = l.listen('handover_channel', (payload) => heard.push(payload ?? ''));
    const removed = removeFirst();
    await Promise.all([second, removed]);
    const sender = await admin();
    await sender.query(`NOTIFY handover_channel, 'after'`);
    expect(await eventually(() => heard.includes('after'))).toBe(true);
  });
});

describe('the last handler of a channel removed', () => {
  it('UNLISTENs: the connection, which other caches share, stops receiving that channel', async () => {
    const { listener: l } = listener({ connection: databaseUrl(), ...fast });
    await l.start();
    // What reaches the connection itself, whether a handler wants it or not.
    const wire: string[] = [];
    (l as unknown as { client: pg.Client }).client.on('notification', (message) =>
      wire.push(`${message.channel}:${message.payload}`),
    );
    const removeGone = await l.listen('unlisten_gone', () => undefined);
    await l.listen('unlisten_kept', () => undefined);
    const sender = await admin();
    await sender.query(`NOTIFY unlisten_gone, 'before'`);
    expect(await eventually(() => wire.includes('unlisten_gone:before'))).toBe(true);
    await removeGone();

    // One session's notifications arrive in the order sent: once the marker is in, the other would be too.
    await sender.query(`NOTIFY unlisten_gone, 'after'`);
    await sender.query(`NOTIFY unlisten_kept, 'marker'`);
    expect(await eventually(() => wire.includes('unlisten_kept:marker'))).toBe(true);
    expect(wire).not.toContain('unlisten_gone:after');
  });
});
