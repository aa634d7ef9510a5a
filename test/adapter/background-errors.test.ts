import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, PostgresAdapter, type PostgresCacheError } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, uniqueSchema } from '../support/database.js';

const schema = uniqueSchema('background_errors');
const pool = adminPool();

beforeAll(() => PostgresAdapter.initDb({ pool, schema }));
afterAll(async () => {
  await dropSchema(schema);
  await pool.end();
});

describe("an 'error' handler that throws on a background error", () => {
  it('neither crashes the process nor stops the adapter', async () => {
    const url = new URL(databaseUrl());
    url.searchParams.set('application_name', `${schema}-pool`);
    const adapter = new PostgresAdapter({ connectionString: url.toString(), schema, sweepInterval: 0 });
    const heard: PostgresCacheError[] = [];
    adapter.on('error', (error) => {
      heard.push(error);
      throw new Error('a broken alert hook');
    });
    try {
      await adapter.set('k', 'v');
      // Its connection now idles in the pool; killing it makes the pool report an error with no caller.
      await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
        `${schema}-pool`,
      ]);
      expect(await eventually(() => heard.length > 0)).toBe(true);
      expect(heard[0]).toBeInstanceOf(ConnectionError);
      expect(await adapter.get('k')).toBe('v');
    } finally {
      await adapter.disconnect();
    }
  });
});
