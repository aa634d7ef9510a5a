// One application process using table-change invalidation, driven by JSON lines on stdin:
// {"id":1,"cmd":"userName","arg":1} → {"id":1,"result":…} or {"id":1,"error":{"code","message"}}.
// It caches results of queries over <schema>.users and <schema>.orders and drops them on table events.
import { createInterface } from 'node:readline';
import pg from 'pg';
import {
  cached,
  invalidateOnTableChange,
  PostgresCache,
  type TableEvent,
  tableWatcherFor,
} from '../../../src/index.js';

const schema = process.argv[2] ?? 'public';
const connectionString = process.env.DATABASE_URL;
const pool = new pg.Pool({ connectionString, max: 8 });
pool.on('error', () => undefined);
const cache = new PostgresCache({
  connectionString,
  schema,
  namespace: 'app',
  sweepInterval: 0,
  reconnect: { initialDelay: 50, maxDelay: 500 },
  heartbeatInterval: 500,
});
cache.on('error', () => undefined);
const watcher = tableWatcherFor(cache);
watcher.on('error', () => undefined);

const loads = new Map<string, number>();
const counted = (name: string) => loads.set(name, (loads.get(name) ?? 0) + 1);
const one = async (sql: string, values: unknown[]) => (await pool.query(sql, values)).rows[0] ?? null;

const userName = cached(
  async (id: number) => {
    counted(`userName:${id}`);
    return (
      ((await one(`SELECT name FROM "${schema}".users WHERE id = $1`, [id])) as { name: string } | null)
        ?.name ?? null
    );
  },
  {
    cache,
    watcher,
    name: 'userName',
    key: String,
    invalidateOn: { table: 'users', keys: (row) => [String(row.id)] },
  },
);
const orderAmount = cached(
  async (id: number) => {
    counted(`orderAmount:${id}`);
    return (
      ((await one(`SELECT amount FROM "${schema}".orders WHERE id = $1`, [id])) as { amount: number } | null)
        ?.amount ?? null
    );
  },
  {
    cache,
    watcher,
    name: 'orderAmount',
    key: String,
    invalidateOn: { table: 'orders', keys: (row) => [String(row.id)] },
  },
);
// Without table rules: the application invalidates its results itself. A run can be held half-way (startPlain
// opens it, openPlain lets it finish) to see what it does with a result another process invalidated meanwhile.
let plainGate: { opened: Promise<void>; open: () => void; run?: Promise<unknown> } | undefined;
const plainName = cached(
  async (id: number) => {
    const row = (await one(`SELECT name FROM "${schema}".users WHERE id = $1`, [id])) as {
      name: string;
    } | null;
    counted(`plainName:${id}`);
    await plainGate?.opened;
    return row?.name ?? null;
  },
  { cache, name: 'plainName', key: String },
);
let plainDeletesHeard = 0;
cache.on('change', (change) => {
  if (change.op === 'delete' && change.namespace === plainName.namespace) plainDeletesHeard++;
});

// Plain cache entries that stand for rows: 'user:<id>' for any change, 'gone:<id>' only when deleted.
const userKeys = invalidateOnTableChange(cache, {
  watcher,
  table: 'users',
  keys: (row) => [`user:${row.id}`],
});
const deletedOnly = invalidateOnTableChange(cache, {
  watcher,
  table: 'users',
  operations: ['delete'],
  keys: (row) => [`gone:${row.id}`],
  onFlush: () => undefined,
});

const describe = (event: TableEvent) =>
  `${event.table}:${event.operation}:${JSON.stringify(event.new ?? event.old ?? null)}`;
const seen = { a: [] as string[], b: [] as string[], inserts: [] as string[] };
watcher.subscribe({ onEvent: (event) => void seen.a.push(describe(event)) });
watcher.subscribe({ onEvent: (event) => void seen.b.push(describe(event)) });
watcher.subscribe({ operations: ['insert'], onEvent: (event) => void seen.inserts.push(describe(event)) });

let load:
  | { running: boolean; calls: number; errors: number; firstError?: string; loops: Promise<void>[] }
  | undefined;

function startLoad() {
  const state = {
    running: true,
    calls: 0,
    errors: 0,
    firstError: undefined as string | undefined,
    loops: [] as Promise<void>[],
  };
  const loop = async (offset: number) => {
    for (let index = offset; state.running; index++) {
      try {
        await userName((index % 5) + 1);
        state.calls++;
      } catch (error) {
        state.errors++;
        state.firstError ??= String(error);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  state.loops = [0, 1, 2, 3].map(loop);
  load = state;
}

const listenerPid = () => {
  const inside = watcher.listener as unknown as { backendPid?: number; client?: { processID?: number } };
  return inside.backendPid ?? inside.client?.processID;
};

type Command = { id: number; cmd: string; arg?: unknown; key?: string; value?: string };
const commands: Record<string, (command: Command) => unknown> = {
  userName: async ({ arg }) => ({
    value: await userName(Number(arg)),
    loads: loads.get(`userName:${arg}`) ?? 0,
  }),
  orderAmount: async ({ arg }) => ({
    value: await orderAmount(Number(arg)),
    loads: loads.get(`orderAmount:${arg}`) ?? 0,
  }),
  plainName: async ({ arg }) => ({
    value: await plainName(Number(arg)),
    loads: loads.get(`plainName:${arg}`) ?? 0,
  }),
  startPlain: async ({ arg }) => {
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    plainGate = { opened, open };
    plainGate.run = plainName(Number(arg));
    // Answers once the run has read its row and waits at the gate.
    while (!loads.get(`plainName:${arg}`)) await new Promise((resolve) => setTimeout(resolve, 5));
    return true;
  },
  openPlain: async () => {
    const gate = plainGate;
    plainGate = undefined;
    gate?.open();
    return { value: await gate?.run, refusedWrites: plainName.stats.refusedWrites };
  },
  invalidatePlain: async ({ arg }) => {
    await plainName.invalidate(Number(arg));
    return true;
  },
  plainDeletesHeard: () => plainDeletesHeard,
  get: ({ key }) => cache.get(String(key)),
  set: ({ key, value }) => cache.set(String(key), String(value)),
  inL1: ({ key }) => [...cache.l1Entries()].some((entry) => entry.namespace === 'app' && entry.key === key),
  events: () => seen,
  stats: () => ({
    watcher: watcher.stats,
    userName: userName.stats,
    userKeys: userKeys.stats,
    deletedOnly: deletedOnly.stats,
    trusted: userName.invalidation?.trusted,
    listenerPid: listenerPid(),
  }),
  startLoad: () => {
    startLoad();
    return true;
  },
  stopLoad: async () => {
    if (!load) return undefined;
    load.running = false;
    await Promise.all(load.loops);
    return { calls: load.calls, errors: load.errors, firstError: load.firstError };
  },
  exit: async () => {
    await Promise.all([
      userName.close(),
      plainName.close(),
      orderAmount.close(),
      userKeys.close(),
      deletedOnly.close(),
    ]);
    await watcher.close();
    await cache.disconnect();
    await pool.end();
    setImmediate(() => process.exit(0));
    return true;
  },
};

await Promise.all([
  cache.init(),
  userName.ready,
  plainName.ready,
  orderAmount.ready,
  userKeys.ready,
  deletedOnly.ready,
]);
process.stdout.write(`${JSON.stringify({ id: 0, result: 'ready' })}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as Command;
  Promise.resolve()
    .then(
      () => commands[command.cmd]?.(command) ?? Promise.reject(new Error(`unknown command ${command.cmd}`)),
    )
    .then(
      (result) => process.stdout.write(`${JSON.stringify({ id: command.id, result: result ?? null })}\n`),
      (error: { code?: string; message?: string }) =>
        process.stdout.write(
          `${JSON.stringify({ id: command.id, error: { code: error.code, message: error.message ?? String(error) } })}\n`,
        ),
    );
});
