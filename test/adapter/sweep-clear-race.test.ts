import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/index.js';
import { adminPool, dropSchema, eventually, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('sweep_clear_race');
const pool = adminPool();
const table = `"${schema}".pgcache_entries`;
const markers = async () =>
  Number((await pool.query(`SELECT count(*) FROM ${table} WHERE key_hash = '\\x'::bytea`)).rows[0].count);

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe('the sweeper and a concurrent clear', () => {
  it('keeps a clear marker that a clear raised while the sweeper was deleting it', async () => {
    const adapter = new PostgresAdapter({ pool, schema, sweepInterval: 0 });
    adapter.namespace = 'ns';
    await adapter.clear();
    // A marker with nothing under it: the sweeper's last step will delete it.
    expect(await markers()).toBe(1);
    const clearing = await pool.connect();
    try {
      await clearing.query('BEGIN');
      // Holds the marker, so the sweeper takes its snapshot and then waits on that row.
      await clearing.query(
        `SELECT 1 FROM ${table} WHERE namespace = 'ns' AND key_hash = '\\x'::bytea FOR UPDATE`,
      );
      const sweeping = adapter.sweep();
      const waiting = await eventually(async () => {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%sweep_expired%'`,
        );
        return rows[0].n > 0;
      });
      expect(waiting).toBe(true);
      // Written and acknowledged, then cleared: it must stay gone whatever the sweeper does.
      await adapter.set('ns:x', 'written before the clear');
      await clearing.query(`SELECT "${schema}".pgcache_clear_namespace('ns', 'unheard')`);
      await clearing.query('COMMIT');
      await sweeping;
    } finally {
      await clearing.query('ROLLBACK').catch(() => undefined);
      clearing.release();
    }
    expect(await adapter.get('ns:x')).toBeUndefined();
    expect(await markers()).toBe(1);
    // With the marker in place, the next sweep deletes the row, then the marker.
    await adapter.sweep();
    expect(await adapter.get('ns:x')).toBeUndefined();
    expect(await markers()).toBe(0);
    await adapter.disconnect();
  });
});
