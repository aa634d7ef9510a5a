import { afterAll, describe, expect, it } from 'vitest';
import { schemaNames } from '../../src/adapter/names.js';
import { buildStatements } from '../../src/adapter/statements.js';
import { PostgresAdapter } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('plans');
const pool = adminPool(1);

afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

// A table just created and filled has no statistics until autovacuum analyzes it (a minute or more later).
// Reads of many keys must probe the primary key even then, not scan the whole namespace.
describe('statements on a table without statistics', () => {
  it('getMany and hasMany read only the rows of the keys asked for', async () => {
    await PostgresAdapter.initDb({ connectionString: databaseUrl(), schema });
    await pool.query(`ALTER TABLE "${schema}".pgcache_entries SET (autovacuum_enabled = false)`);
    const adapter = new PostgresAdapter({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
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
    const statements = buildStatements(schemaNames(schema, 'pgcache_'));
    for (const statement of [statements.getMany, statements.hasMany]) {
      const plan = await pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, COSTS OFF) ${statement.text}`,
        ['', keys.slice(0, 100)],
      );
      const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(text).not.toMatch(/Rows Removed by Filter/);
      expect(text).toMatch(/rows=100(\.00)? loops=1\)/);
    }
  });
});
