import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter, QueryError } from '../../src/index.js';
import {
  adminPool,
  databaseUrl,
  dropSchema,
  eventually,
  repeatableReadUrl,
  sleep,
  uniqueSchema,
} from '../support/database.js';

// A statement the server rolled back for another transaction's sake had no effect, so the adapter runs it
// again. A database (or role) whose default isolation is REPEATABLE READ runs each of the adapter's autocommit
// statements in a transaction of its own at that level: a row another transaction changed after the
// statement's snapshot fails it with a serialization failure, where READ COMMITTED would have waited and
// gone on. Under any isolation, a transaction of the application's can make one of them a deadlock's victim.
const schema = uniqueSchema('rolled_back');
const pool = adminPool();
const entries = `"${schema}".pgcache_entries`;

function repeatableReadAdapter(): PostgresAdapter {
  const adapter = new PostgresAdapter({ connectionString: repeatableReadUrl(), schema, sweepInterval: 0 });
  adapter.namespace = 'rr';
  return adapter;
}

/** Runs `operation` while another transaction holds an update of the key's row, and commits that after. */
async function racingAnUpdate<T>(key: string, operation: () => Promise<T>): Promise<T> {
  const other: pg.PoolClient = await pool.connect();
  try {
    await other.query('BEGIN');
    await other.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'rr' AND key = $2`, [
      JSON.stringify({ value: 'theirs' }),
      key,
    ]);
    const running = operation();
    running.catch(() => undefined);
    // Long enough for the statement to take its snapshot and queue on the row's lock.
    await sleep(200);
    await other.query('COMMIT');
    return await running;
  } finally {
    other.release();
  }
}

async function storedValue(key: string): Promise<string | undefined> {
  const { rows } = await pool.query(`SELECT value FROM ${entries} WHERE namespace = 'rr' AND key = $1`, [
    key,
  ]);
  return rows[0]?.value;
}

let adapter: PostgresAdapter;

beforeAll(async () => {
  adapter = repeatableReadAdapter();
  await adapter.init();
  const { rows } = await adapter.pool.query('SHOW default_transaction_isolation');
  expect(rows[0]?.default_transaction_isolation).toBe('repeatable read');
});

afterAll(async () => {
  await adapter.disconnect();
  await dropSchema(schema);
  await pool.end();
});

describe('REPEATABLE READ as the default isolation', () => {
  it('a set of a row another transaction is changing waits for it, and writes after it', async () => {
    await adapter.set('set', 'before');
    await racingAnUpdate('set', () => adapter.set('set', 'ours'));
    expect(await storedValue('set')).toBe('ours');
    expect(await adapter.get('set')).toBe('ours');
  });

  it('so does a setMany', async () => {
    await adapter.setMany([
      { key: 'many-a', value: 'before' },
      { key: 'many-b', value: 'before' },
    ]);
    await racingAnUpdate('many-b', () =>
      adapter.setMany([
        { key: 'many-a', value: 'ours' },
        { key: 'many-b', value: 'ours' },
      ]),
    );
    expect(await adapter.getMany(['many-a', 'many-b'])).toEqual(['ours', 'ours']);
  });

  it('a delete and a deleteMany of such a row delete it', async () => {
    await adapter.set('delete', 'before');
    expect(await racingAnUpdate('delete', () => adapter.delete('delete'))).toBe(true);
    expect(await storedValue('delete')).toBeUndefined();
    await adapter.setMany([
      { key: 'gone-a', value: 'before' },
      { key: 'gone-b', value: 'before' },
    ]);
    expect(await racingAnUpdate('gone-a', () => adapter.deleteMany(['gone-a', 'gone-b']))).toBe(true);
    expect(await adapter.getMany(['gone-a', 'gone-b'])).toEqual([undefined, undefined]);
  });

  it('a clear while another transaction changes the clear marker clears', async () => {
    await adapter.clear();
    await adapter.set('cleared', 'before');
    const other = await pool.connect();
    try {
      await other.query('BEGIN');
      // The namespace's clear marker: the row a clear() updates.
      await other.query(
        `UPDATE ${entries} SET value = value WHERE namespace = 'rr' AND key_hash = '\\x'::bytea`,
      );
      const clearing = adapter.clear();
      clearing.catch(() => undefined);
      await sleep(200);
      await other.query('COMMIT');
      await clearing;
    } finally {
      other.release();
    }
    expect(await adapter.get('cleared')).toBeUndefined();
  });
});

describe("a deadlock with an application's transaction", () => {
  it('a deleteMany made its victim runs again, after that transaction, and deletes', async () => {
    // The server cancels the first of the two whose deadlock_timeout runs out once the cycle is closed. The
    // adapter's 3 s leave a loaded machine time to close it; the application's 60 s never run out first.
    // (Both are superuser settings, as the tests' role is.)
    const url = new URL(databaseUrl());
    url.searchParams.set('options', '-c deadlock_timeout=3s');
    const plain = new PostgresAdapter({ connectionString: url.toString(), schema, sweepInterval: 0 });
    plain.namespace = 'dl';
    const other = await pool.connect();
    try {
      await plain.setMany([
        { key: 'a', value: 'before' },
        { key: 'b', value: 'before' },
      ]);
      // delete_keys locks its rows in digest order: the application takes the second one first.
      const { rows } = await pool.query(
        `SELECT key FROM ${entries} WHERE namespace = 'dl' ORDER BY key_hash`,
      );
      const [first, second] = rows.map((row) => row.key as string);
      const update = `UPDATE ${entries} SET value = 'theirs' WHERE namespace = 'dl' AND key = $1`;
      await other.query('BEGIN');
      await other.query("SET LOCAL deadlock_timeout = '60s'");
      await other.query(update, [second]);
      const deadlocks = async () => {
        await pool.query('SELECT pg_stat_clear_snapshot()');
        const { rows } = await pool.query(
          'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()',
        );
        return Number(rows[0]?.deadlocks);
      };
      const deadlocksBefore = await deadlocks();
      const deleting = plain.deleteMany(['a', 'b']);
      deleting.catch(() => undefined);
      // It holds the first row and waits for the second; the application now waits for the first.
      const waiting = async () => {
        const { rows: found } = await pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%${schema}%delete_keys%`],
        );
        return found.length > 0;
      };
      expect(await eventually(waiting, 10_000)).toBe(true);
      await other.query(update, [first]);
      await other.query('COMMIT');
      expect(await deleting).toBe(true);
      // The server did choose a victim, and the call still answered: it was run again.
      expect(await eventually(async () => (await deadlocks()) > deadlocksBefore, 10_000, 100)).toBe(true);
      expect(await plain.getMany(['a', 'b'])).toEqual([undefined, undefined]);
    } finally {
      other.release();
      await plain.disconnect();
    }
  });
});

describe("a statement inside the caller's transaction block", () => {
  it('is not run again: the caller gets the serialization failure, and can retry its transaction', async () => {
    await adapter.set('in-tx', 'before');
    // A connection of the adapter's pool: REPEATABLE READ by default, as the adapter's own statements are.
    const mine = await adapter.pool.connect();
    try {
      await mine.query('BEGIN');
      // The transaction's snapshot is taken here, before the other change commits.
      await mine.query(`SELECT 1 FROM ${entries} LIMIT 1`);
      await pool.query(`UPDATE ${entries} SET value = $1 WHERE namespace = 'rr' AND key = 'in-tx'`, [
        JSON.stringify({ value: 'theirs' }),
      ]);
      const error = await adapter.writeEntry('rr', 'in-tx', 'ours', undefined, mine).catch((e: unknown) => e);
      // Run again in the aborted transaction block, it would fail as 25P02 ("current transaction is aborted").
      expect(error).toBeInstanceOf(QueryError);
      expect((error as QueryError).cause).toMatchObject({ code: '40001' });
      await mine.query('ROLLBACK');
    } finally {
      mine.release();
    }
    expect(JSON.parse((await storedValue('in-tx')) as string)).toEqual({ value: 'theirs' });
  });
});
