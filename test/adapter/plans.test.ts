import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaNames } from '../../src/adapter/names.js';
import { buildStatements } from '../../src/adapter/statements.js';
import { PostgresAdapter } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('plans');
const pool = adminPool(1);
const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
const asked = keys.slice(0, 100);
const statements = buildStatements(schemaNames(schema, 'pgcache_'));

// A table just created and filled has no statistics until autovacuum analyzes it (a minute or more later).
// Statements on many keys must probe the primary key even then, not scan the whole namespace.
beforeAll(async () => {
  await PostgresAdapter.initDb({ connectionString: databaseUrl(), schema });
  await pool.query(`ALTER TABLE "${schema}".pgcache_entries SET (autovacuum_enabled = false)`);
  const adapter = new PostgresAdapter({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
  await adapter.writeEntries(
    '',
    keys.map((key) => ({ key, value: 'v' })),
  );
  await adapter.disconnect();
  const { rows } = await pool.query<{ analyzed: number }>(
    `SELECT coalesce(extract(epoch from last_analyze), extract(epoch from last_autoanalyze), 0) AS analyzed
       FROM pg_stat_user_tables WHERE schemaname = $1`,
    [schema],
  );
  expect(rows.every((row) => Number(row.analyzed) === 0)).toBe(true);
});

afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('statements on a table without statistics', () => {
  it('getMany and hasMany read only the rows of the keys asked for', async () => {
    for (const statement of [statements.getMany, statements.hasMany]) {
      const plan = await pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, COSTS OFF) ${statement.text}`,
        ['', asked],
      );
      const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(text).not.toMatch(/Rows Removed by Filter/);
      expect(text).toMatch(/rows=100(\.00)? loops=1\)/);
    }
  });

  it('deleteMany reads only the rows of the keys asked for', async () => {
    // Its statements run inside a function, so the table's counters of this transaction tell what it read:
    // 100 rows through the primary key, none by scanning the table.
    const client = await pool.connect();
    const read = async () => {
      const { rows } = await client.query<{ scanned: string; fetched: string }>(
        `SELECT seq_tup_read AS scanned, idx_tup_fetch AS fetched FROM pg_stat_xact_user_tables
          WHERE schemaname = $1 AND relname = 'pgcache_entries'`,
        [schema],
      );
      return { scanned: Number(rows[0]?.scanned), fetched: Number(rows[0]?.fetched) };
    };
    try {
      await client.query('BEGIN');
      const before = await read();
      const deleted = await client.query(statements.deleteMany.text, ['', asked]);
      const after = await read();
      expect(deleted.rowCount).toBe(100);
      expect(after.fetched - before.fetched).toBe(100);
      expect(after.scanned - before.scanned).toBe(0);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
