import net from 'node:net';

/**
 * What the proxy does with a client's bytes:
 * - `forward`: passes everything both ways;
 * - `silent`: accepts the connection, reads and drops what the client sends, never answers
 *   (a stuck proxy, or a server too busy to get to it);
 * - `drop-queries`: forwards the startup and authentication, then drops everything from the first
 *   statement (a Query or Parse message) on: a server that lets you in but never answers a statement.
 * A mode applies to the connections accepted while it holds; `stall()` silences those already open.
 */
export type ProxyMode = 'forward' | 'silent' | 'drop-queries';

export interface TcpProxy {
  /** The database URL with its host and port pointing at the proxy. */
  readonly url: string;
  mode: ProxyMode;
  /** Holds what the server sends for this many ms before passing it on (in order): a slower route. */
  serverDelayMs: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Client sockets still open. */
  readonly open: number;
  /** Local ports of the open connections to the server: `pg_stat_activity.client_port` of each. */
  upstreamPorts(): number[];
  /** From now on nothing is forwarded either way on the connections open now, which stay open (half-open). */
  stall(): void;
  /** Destroys every connection (both sides). */
  dropAll(): void;
  close(): Promise<void>;
}

/** A TCP proxy in front of the database of `databaseUrl`, on a free port of 127.0.0.1. */
export async function startTcpProxy(databaseUrl: string, mode: ProxyMode = 'forward'): Promise<TcpProxy> {
  const target = new URL(databaseUrl);
  const targetHost = target.hostname || '127.0.0.1';
  const targetPort = Number(target.port || 5432);
  const clients = new Set<net.Socket>();
  const upstreams = new Set<net.Socket>();
  let accepted = 0;
  const stalled = new WeakSet<net.Socket>();

  const server = net.createServer((client) => {
    accepted++;
    clients.add(client);
    client.on('error', () => undefined);
    client.on('close', () => clients.delete(client));
    if (proxy.mode === 'silent') {
      client.resume();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    upstreams.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      upstreams.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('data', (data) => {
      const pass = () => {
        if (!stalled.has(client)) client.write(data);
      };
      if (proxy.serverDelayMs > 0) setTimeout(pass, proxy.serverDelayMs);
      else pass();
    });
    const forward =
      proxy.mode === 'forward' ? (data: Buffer) => upstream.write(data) : untilFirstQuery(upstream);
    client.on('data', (data) => {
      if (!stalled.has(client)) forward(data);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  const proxy: TcpProxy = {
    url: url.toString(),
    mode,
    serverDelayMs: 0,
    get accepted() {
      return accepted;
    },
    get open() {
      return clients.size;
    },
    upstreamPorts: () => [...upstreams].map((socket) => socket.localPort).filter((p) => p !== undefined),
    stall() {
      for (const client of clients) stalled.add(client);
    },
    dropAll() {
      for (const socket of [...clients, ...upstreams]) socket.destroy();
    },
    async close() {
      proxy.dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

/**
 * Forwards the frontend stream to `upstream` up to the first Query ('Q') message, then drops the rest.
 * The first message (startup) has no type byte; every later one is a type byte and a 4-byte length.
 */
function untilFirstQuery(upstream: net.Socket): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let startupDone = false;
  let blocked = false;
  return (chunk) => {
    if (blocked) return;
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (!startupDone) {
        if (pending.length < 4) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        upstream.write(pending.subarray(0, length));
        pending = pending.subarray(length);
        startupDone = true;
        continue;
      }
      if (pending.length < 5) return;
      // 'Q' (a simple query) or 'P' (Parse, the first message of a query with parameters).
      if (pending[0] === 0x51 || pending[0] === 0x50) {
        blocked = true;
        return;
      }
      const length = 1 + pending.readInt32BE(1);
      if (pending.length < length) return;
      upstream.write(pending.subarray(0, length));
      pending = pending.subarray(length);
    }
  };
}
