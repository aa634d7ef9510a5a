import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/index.js';
import { databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('coalescing');

/** A real pool that counts the statements sent through it. */
function countingPool(max: number, options: pg.PoolConfig = {}) {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max, allowExitOnIdle: true, ...options });
  pool.on('error', () => undefined);
  const counted = { statements: 0 };
  // The adapter checks a connection out for each statement it sends.
  pool.on('acquire', () => {
    counted.statements++;
  });
  return { pool, counted };
}

beforeAll(() => PostgresAdapter.initDb({ connectionString: databaseUrl(), schema }));
afterAll(() => dropSchema(schema));

describe('merging calls that wait for a connection', () => {
  it('answers each of many concurrent gets correctly, in fewer statements than calls', async () => {
    const { pool, counted } = countingPool(2);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.setMany(Array.from({ length: 100 }, (_, i) => ({ key: `merge:k${i}`, value: `v${i}` })));
    counted.statements = 0;
    const keys = Array.from({ length: 200 }, (_, i) => `merge:k${i % 150}`);
    const values = await Promise.all(keys.map((key) => adapter.get(key)));
    expect(values).toEqual(keys.map((_, i) => (i % 150 < 100 ? `v${i % 150}` : undefined)));
    expect(counted.statements).toBeLessThan(20);
    await adapter.disconnect();
    await pool.end();
  });

  it('never lets a call overtake an earlier one on its key by joining a statement queued before it', async () => {
    // One connection: statements run one after the other, so the order they start in is the order they commit.
    const { pool, counted } = countingPool(1);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'order';
    await adapter.set('order:k', 'old');
    await adapter.set('order:gone', 'old');
    counted.statements = 0;
    const busy = adapter.execute('SELECT pg_sleep(0.2)', [], 'busy');
    // Each call queues behind the sleep; the later ones would join the first queued set, or get.
    const calls = [
      adapter.set('order:x', 'x'),
      adapter.delete('order:k'),
      adapter.set('order:k', 'new'),
      adapter.get('order:y'),
      adapter.set('order:y', 'y'),
      adapter.get('order:y'),
      adapter.set('order:z', 'z'),
      adapter.clearNamespace('other'),
      adapter.set('order:w', 'w'),
    ];
    const results = await Promise.all([busy, ...calls]);
    expect(results[4]).toBeUndefined();
    expect(results[6]).toBe('y');
    expect(await adapter.getMany(['order:k', 'order:x', 'order:z', 'order:w'])).toEqual([
      'new',
      'x',
      'z',
      'w',
    ]);
    // Calls on other keys still merge: z and w joined the set of y.
    expect(counted.statements).toBeLessThan(calls.length + 1);
    await adapter.disconnect();
    await pool.end();
  });

  it('a read that joins an older statement does not hide a later-queued read of its key from a write', async () => {
    const { pool } = countingPool(1);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'hide';
    await adapter.init();
    const busy = adapter.execute('SELECT pg_sleep(0.2)', [], 'busy');
    // get(k) joins the read of x, queued before has(k); set(k) must still wait for has(k).
    const calls = [
      adapter.get('hide:x'),
      adapter.set('hide:a', 'a'),
      adapter.has('hide:k'),
      adapter.get('hide:k'),
      adapter.set('hide:k', 'v'),
    ];
    const [, , , had, got] = await Promise.all([busy, ...calls]);
    expect([had, got]).toEqual([false, undefined]);
    expect(await adapter.get('hide:k')).toBe('v');
    await adapter.disconnect();
    await pool.end();
  });

  it('keeps namespaces apart within one burst', async () => {
    const { pool } = countingPool(1);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.writeEntry('left', 'shared', 'from left');
    await adapter.writeEntry('right', 'shared', 'from right');
    const reads = await Promise.all(
      Array.from({ length: 40 }, (_, i) => adapter.readEntry(i % 2 ? 'right' : 'left', 'shared')),
    );
    expect(reads.map((entry) => entry?.value)).toEqual(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? 'from right' : 'from left')),
    );
    await adapter.disconnect();
    await pool.end();
  });

  it('gives every write of one burst its own version, a key written twice included', async () => {
    const { pool, counted } = countingPool(2);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.init();
    counted.statements = 0;
    const writes = Array.from({ length: 120 }, (_, i) => ({ key: `w${i % 40}`, value: `value ${i}` }));
    const versions = await Promise.all(
      writes.map((write) => adapter.writeEntry('writes', write.key, write.value, 60_000)),
    );
    expect(counted.statements).toBeLessThan(writes.length / 2);
    expect(new Set(versions).size).toBe(writes.length);
    expect(versions.every(Number.isSafeInteger)).toBe(true);
    // The row holds whichever write of each key committed last: the one with the highest version.
    for (let k = 0; k < 40; k++) {
      const mine = writes
        .map((write, i) => ({ ...write, version: versions[i] as number }))
        .filter((write) => write.key === `w${k}`)
        .sort((a, b) => b.version - a.version);
      const stored = await adapter.readEntry('writes', `w${k}`);
      expect(stored?.value).toBe(mine[0]?.value);
      expect(stored?.version).toBe(mine[0]?.version);
      expect(stored?.ttlLeft).toBeGreaterThan(50_000);
    }
    await adapter.disconnect();
    await pool.end();
  });

  it('never merges two writes of one key into one statement: both land, in order', async () => {
    const { pool } = countingPool(1);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    await adapter.init();
    const busy = adapter.execute('SELECT pg_sleep(0.2)', [], 'busy');
    // Both wait behind the sleep with nothing between them; one multi-row upsert could not write the key twice.
    const first = adapter.writeEntry('twice', 'k', 'first');
    const second = adapter.writeEntry('twice', 'k', 'second');
    const [, v1, v2] = await Promise.all([busy, first, second]);
    expect(v2).toBeGreaterThan(v1);
    expect(await adapter.readEntry('twice', 'k')).toMatchObject({ value: 'second', version: v2 });
    await adapter.disconnect();
    await pool.end();
  });

  it('merges concurrent deletes too, each answering for its own key', async () => {
    const { pool, counted } = countingPool(2);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'deletes';
    await adapter.setMany(Array.from({ length: 100 }, (_, i) => ({ key: `deletes:k${i}`, value: `v${i}` })));
    counted.statements = 0;
    // Half the keys were never written; two keys are deleted twice, and the earlier call finds the row.
    const keys = [...Array.from({ length: 200 }, (_, i) => `deletes:k${i}`), 'deletes:k1', 'deletes:k2'];
    const deleted = await Promise.all(keys.map((key) => adapter.delete(key)));
    expect(counted.statements).toBeLessThan(keys.length / 4);
    expect(deleted).toEqual(keys.map((_, i) => i < 100));
    expect(await adapter.getMany(keys.slice(0, 100))).toEqual(keys.slice(0, 100).map(() => undefined));
    await adapter.disconnect();
    await pool.end();
  });

  it('keeps at most maxInFlight statements running, so it opens no more connections than that', async () => {
    const { pool, counted } = countingPool(10);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, maxInFlight: 2 });
    await adapter.init();
    counted.statements = 0;
    await Promise.all(Array.from({ length: 60 }, (_, i) => adapter.set(`bounded:${i}`, `v${i}`)));
    await Promise.all(Array.from({ length: 60 }, (_, i) => adapter.get(`bounded:${i}`)));
    expect(pool.totalCount).toBeLessThanOrEqual(2);
    expect(counted.statements).toBeLessThan(60);
    await adapter.disconnect();
    await pool.end();
  });

  it('runs one statement per call with batchSize 1', async () => {
    const { pool, counted } = countingPool(2);
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, batchSize: 1 });
    await adapter.init();
    counted.statements = 0;
    await Promise.all(Array.from({ length: 30 }, (_, i) => adapter.get(`one-by-one:${i}`)));
    expect(counted.statements).toBe(30);
    await adapter.disconnect();
    await pool.end();
  });

  it('fails calls that wait too long for a connection with a ConnectionError, then recovers', async () => {
    const { pool } = countingPool(1, { connectionTimeoutMillis: 300 });
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0, connectionTimeout: 300 });
    await adapter.writeEntry('starved', 'k', 'v');
    const hog = await pool.connect();
    const started = Date.now();
    // Twelve namespaces, so twelve statements queue one behind another: each must give up on its own clock.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => adapter.readEntry(`starved${i}`, 'k')),
    );
    // One after another they would take 3.6 s.
    expect(Date.now() - started).toBeLessThan(2500);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_PGCACHE_CONNECTION' });
    }
    hog.release();
    expect((await adapter.readEntry('starved', 'k'))?.value).toBe('v');
    await adapter.disconnect();
    await pool.end();
  });
});
