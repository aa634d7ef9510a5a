import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  installTableWatch,
  type PostgresCacheError,
  type TableEvent,
  TableWatcher,
  tableChangeChannel,
} from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, uniqueSchema } from '../support/database.js';
import { killListener, listenerPid, q } from './support.js';

const schema = uniqueSchema('tw_watcher');
const pool = adminPool();
const channel = tableChangeChannel({ cacheSchema: schema });
const watchers: TableWatcher[] = [];

function newWatcher() {
  const watcher = new TableWatcher({ connection: databaseUrl(), cacheSchema: schema });
  watchers.push(watcher);
  return watcher;
}

/** A subscriber that records what it gets. */
function collector() {
  const events: TableEvent[] = [];
  return { events, onEvent: (event: TableEvent) => void events.push(event) };
}

const describeEvent = (event: TableEvent) =>
  `${event.table}:${event.operation}:${JSON.stringify(event.new ?? event.old ?? null)}`;

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
  for (const table of ['users', 'orders']) {
    await pool.query(`CREATE TABLE ${q(schema)}.${table} (id int PRIMARY KEY, note text)`);
    await installTableWatch(pool, { schema, table, cacheSchema: schema });
  }
});

afterAll(async () => {
  await Promise.all(watchers.map((watcher) => watcher.close()));
  await dropSchema(schema);
  await pool.end();
});

describe('TableWatcher', () => {
  it('two subscribers in one process both see the same event; neither takes it from the other', async () => {
    const watcher = newWatcher();
    const first = collector();
    const second = collector();
    watcher.subscribe(first);
    watcher.subscribe(second);
    const emitted: TableEvent[] = [];
    watcher.on('event', (event) => emitted.push(event));
    // A second watcher of the same process shares the LISTEN connection, and hears it too.
    const third = collector();
    const other = newWatcher();
    other.subscribe(third);
    await Promise.all([watcher.start(), other.start()]);
    await pool.query(`INSERT INTO ${q(schema)}.users VALUES (1, 'a')`);
    const heard = () => [first, second, third].every((subscriber) => subscriber.events.length === 1);
    expect(await eventually(heard, 15_000)).toBe(true);
    expect(first.events).toEqual(second.events);
    expect(third.events).toEqual(first.events);
    expect(emitted).toEqual(first.events);
    expect(first.events[0]).toMatchObject({ schema, table: 'users', operation: 'insert', new: { id: 1 } });
    expect(other.listener).toBe(watcher.listener);
    expect(watcher.stats).toMatchObject({
      received: 1,
      ignored: 0,
      delivered: 2,
      subscribers: 2,
      connected: true,
    });
  });

  it('filters by table, schema, operation and predicate; every subscriber gets exactly what it asked for', async () => {
    const watcher = newWatcher();
    const all = collector();
    const users = collector();
    const deletes = collector();
    const insertsAndUpdatesOfOrders = collector();
    const bigIds = collector();
    const otherSchema = collector();
    watcher.subscribe(all);
    watcher.subscribe({ table: 'users', ...users });
    watcher.subscribe({ operations: ['delete'], ...deletes });
    watcher.subscribe({
      table: ['orders'],
      schema,
      operations: ['insert', 'update'],
      ...insertsAndUpdatesOfOrders,
    });
    watcher.subscribe({ where: (event) => Number((event.new ?? event.old)?.id) >= 100, ...bigIds });
    watcher.subscribe({ schema: 'public', ...otherSchema });
    await watcher.start();
    await pool.query(`INSERT INTO ${q(schema)}.users VALUES (10, 'x'), (100, 'y')`);
    await pool.query(`INSERT INTO ${q(schema)}.orders VALUES (20, 'x')`);
    await pool.query(`UPDATE ${q(schema)}.orders SET note = 'z'`);
    await pool.query(`DELETE FROM ${q(schema)}.users WHERE id = 10`);
    await pool.query(`DELETE FROM ${q(schema)}.orders`);
    // Events arrive in commit order on one connection: once the catch-all has the last, all are in.
    expect(await eventually(() => all.events.length === 6, 15_000)).toBe(true);
    expect(all.events.map(describeEvent)).toEqual([
      'users:insert:{"id":10}',
      'users:insert:{"id":100}',
      'orders:insert:{"id":20}',
      'orders:update:{"id":20}',
      'users:delete:{"id":10}',
      'orders:delete:{"id":20}',
    ]);
    expect(users.events.map(describeEvent)).toEqual([
      'users:insert:{"id":10}',
      'users:insert:{"id":100}',
      'users:delete:{"id":10}',
    ]);
    expect(deletes.events.map(describeEvent)).toEqual(['users:delete:{"id":10}', 'orders:delete:{"id":20}']);
    expect(insertsAndUpdatesOfOrders.events.map(describeEvent)).toEqual([
      'orders:insert:{"id":20}',
      'orders:update:{"id":20}',
    ]);
    expect(bigIds.events.map(describeEvent)).toEqual(['users:insert:{"id":100}']);
    expect(otherSchema.events).toEqual([]);
  });

  it('ignores and counts malformed payloads; a throwing or rejecting subscriber never stops the others', async () => {
    const watcher = newWatcher();
    const errors: PostgresCacheError[] = [];
    watcher.on('error', (error) => errors.push(error));
    const healthy = collector();
    watcher.subscribe({
      onEvent: () => {
        throw new Error('subscriber bug');
      },
    });
    watcher.subscribe({ onEvent: async () => Promise.reject(new Error('async subscriber bug')) });
    watcher.subscribe({
      where: () => {
        throw new Error('predicate bug');
      },
      onEvent: () => undefined,
    });
    // From JavaScript, or typed loosely: a predicate that answers with a promise, which then rejects.
    const late = collector();
    watcher.subscribe({
      where: (async () => Promise.reject(new Error('async predicate bug'))) as never,
      onEvent: late.onEvent,
    });
    watcher.subscribe(healthy);
    await watcher.start();
    const garbage = [
      'not json',
      '{}',
      '[1,2]',
      'null',
      JSON.stringify({ schema, table: 'users', op: 'upsert', new: { id: 1 } }),
      JSON.stringify({ schema, table: 'users', op: 'update', new: { id: 1 } }),
      JSON.stringify({ schema: '', table: 'users', op: 'insert', new: {} }),
      JSON.stringify({ schema, table: 'users', op: 'insert', new: [1] }),
      `{"schema":"${'x'.repeat(7900)}`,
    ];
    for (const payload of garbage) await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    await pool.query(`INSERT INTO ${q(schema)}.users VALUES (2, 'ok')`);
    expect(await eventually(() => healthy.events.length === 1, 15_000)).toBe(true);
    expect(watcher.stats).toMatchObject({ received: garbage.length + 1, ignored: garbage.length });
    expect(await eventually(() => watcher.stats.subscriberErrors === 4, 15_000)).toBe(true);
    expect(errors.map((error) => error.message).sort()).toEqual([
      expect.stringContaining('async subscriber bug'),
      expect.stringContaining('predicate bug'),
      expect.stringContaining('subscriber bug'),
      expect.stringContaining('where() must answer at once'),
    ]);
    // A promise is no match: what it settles to comes too late to count.
    expect(late.events).toEqual([]);
  });

  it('tells subscribers when the listener is lost and when it is back, and delivers again after', async () => {
    const watcher = newWatcher();
    const log: string[] = [];
    const events = collector();
    watcher.subscribe({
      ...events,
      onDisconnected: () => log.push('disconnected'),
      onReconnected: () => log.push('reconnected'),
    });
    await watcher.start();
    expect(watcher.connected).toBe(true);
    expect(await killListener(pool, listenerPid(watcher.listener))).toBe(1);
    expect(await eventually(() => log.length === 2, 20_000)).toBe(true);
    expect(log).toEqual(['disconnected', 'reconnected']);
    expect(watcher.stats).toMatchObject({ reconnects: 1, connected: true });
    await pool.query(`INSERT INTO ${q(schema)}.users VALUES (3, 'after')`);
    expect(await eventually(() => events.events.some((event) => event.new?.id === 3), 15_000)).toBe(true);
  });

  it('refuses a bad channel or filter with a typed error', () => {
    expect(() => new TableWatcher({ connection: databaseUrl(), channel: 'no; way' })).toThrow(
      expect.objectContaining({ code: 'ERR_PGCACHE_INVALID_IDENTIFIER' }),
    );
    const watcher = newWatcher();
    expect(() => watcher.subscribe({ operations: ['upsert' as 'insert'], onEvent: () => undefined })).toThrow(
      expect.objectContaining({ code: 'ERR_PGCACHE_INVALID_OPTION' }),
    );
    expect(() => watcher.subscribe({ table: '', onEvent: () => undefined })).toThrow(
      expect.objectContaining({ code: 'ERR_PGCACHE_INVALID_OPTION' }),
    );
    expect(() => watcher.subscribe({} as never)).toThrow(
      expect.objectContaining({ code: 'ERR_PGCACHE_INVALID_OPTION' }),
    );
  });
});
