// A PostgresCache in its own process, driven by JSON lines on stdin: {"id":1,"cmd":"get","key":"k"}.
// Answers {"id":1,"result":...} or {"id":1,"error":{"code","message"}} on stdout.
import { createInterface } from 'node:readline';
import Keyv from 'keyv';
import pg from 'pg';
import { PostgresCache } from '../../../src/index.js';

const schema = process.argv[2] ?? 'public';
// One cache per namespace, as Keyv wants (clear() clears the store's namespace); they share one pool,
// and the process's one LISTEN connection.
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: 10,
  connectionTimeoutMillis: 2000,
});
pool.on('error', () => undefined);
const caches = new Map<string, { cache: PostgresCache; keyv: Keyv }>();
const entry = (namespace = 'app') => {
  let found = caches.get(namespace);
  if (!found) {
    const cache = new PostgresCache({
      pool,
      schema,
      sweepInterval: 0,
      statementTimeout: 2000,
      reconnect: { initialDelay: 50, maxDelay: 500 },
      heartbeatInterval: 500,
      l1: { max: 10_000 },
      ...(process.env.PGCACHE_NOTIFY_CHANNEL ? { notifyChannel: process.env.PGCACHE_NOTIFY_CHANNEL } : {}),
    });
    cache.on('error', () => undefined);
    found = { cache, keyv: new Keyv({ store: cache, namespace, throwOnErrors: true }) };
    caches.set(namespace, found);
  }
  return found;
};
const keyv = (namespace?: string) => entry(namespace).keyv;
const cache = entry('app').cache;

let churning = false;

type Command = {
  id: number;
  cmd: string;
  key?: string;
  value?: unknown;
  namespace?: string;
  [name: string]: unknown;
};

const commands: Record<string, (command: Command) => Promise<unknown> | unknown> = {
  init: () => cache.init(),
  get: ({ key, namespace }) => keyv(namespace).get(String(key)),
  set: ({ key, value, namespace, ttl }) => keyv(namespace).set(String(key), value, ttl as number | undefined),
  delete: ({ key, namespace }) => keyv(namespace).delete(String(key)),
  clear: ({ namespace }) => keyv(namespace).clear(),
  stats: () => cache.stats,
  coherent: () => cache.coherent,
  l1: () => [...caches.values()].flatMap(({ cache: each }) => [...each.l1Entries()]),
  // Reads and writes a few hot keys as fast as it can until told to stop; returns operation counts.
  churn: async ({ keys, writeShare }) => {
    churning = true;
    const hot = Array.from({ length: Number(keys) }, (_, i) => `hot${i}`);
    let reads = 0;
    let writes = 0;
    let errors = 0;
    const lanes = Array.from({ length: 8 }, async (_, lane) => {
      let n = 0;
      while (churning) {
        const key = hot[(lane * 7 + n++) % hot.length] as string;
        try {
          if (Math.random() < Number(writeShare)) {
            await keyv().set(key, `${process.pid}-${lane}-${n}`);
            writes++;
          } else {
            await keyv().get(key);
            reads++;
          }
        } catch {
          errors++;
        }
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
    churnDone = Promise.all(lanes).then(() => ({ reads, writes, errors }));
    return 'started';
  },
  stopChurn: async () => {
    churning = false;
    return churnDone;
  },
  exit: async () => {
    await Promise.all([...caches.values()].map(({ cache: each }) => each.disconnect()));
    await pool.end();
    setImmediate(() => process.exit(0));
    return 'bye';
  },
};
let churnDone: Promise<unknown> = Promise.resolve();

const reply = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as Command;
  const handler = commands[command.cmd];
  Promise.resolve()
    .then(() => {
      if (!handler) throw new Error(`unknown command ${command.cmd}`);
      return handler(command);
    })
    .then(
      (result) => reply({ id: command.id, result: result === undefined ? null : result }),
      (error: Error & { code?: string }) =>
        reply({ id: command.id, error: { code: error.code, message: error.message } }),
    );
});
reply({ id: 0, result: 'ready' });
