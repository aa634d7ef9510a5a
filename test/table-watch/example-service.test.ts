import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../examples/table-invalidation/app.js';
import { installTableWatch, PostgresCache } from '../../src/index.js';
import { adminPool, databaseUrl, dropSchema, eventually, uniqueSchema } from '../support/database.js';
import { q } from './support.js';

const schema = uniqueSchema('tw_example');
const pool = adminPool();
let cache: PostgresCache;
let app: ReturnType<typeof buildApp>;
let base: string;

const getJson = async (path: string) => {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${q(schema)}`);
  await pool.query(
    `CREATE TABLE ${q(schema)}.users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL)`,
  );
  await pool.query(`INSERT INTO ${q(schema)}.users VALUES (1, 'Ada', 'ada@example.com')`);
  await installTableWatch(pool, { schema, table: 'users', cacheSchema: schema });
  cache = new PostgresCache({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
  await cache.init();
  app = buildApp({ cache, db: pool, schema });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
  await cache.disconnect();
  await dropSchema(schema);
  await pool.end();
});

describe('the example service (Fastify, over real HTTP)', () => {
  it('serves GET /users/:id from the cache and drops it when the row changes over another connection', async () => {
    expect(await getJson('/users/1')).toEqual({
      status: 200,
      body: { id: 1, name: 'Ada', email: 'ada@example.com' },
    });
    expect((await getJson('/users/1')).body.name).toBe('Ada');
    expect((await getJson('/stats')).body).toMatchObject({ loads: 1, hits: 1 });

    // Someone else changes the row: a plain connection, nothing to do with the service.
    const other = new pg.Client({ connectionString: databaseUrl() });
    await other.connect();
    await other.query(`UPDATE ${q(schema)}.users SET name = 'Ada Lovelace' WHERE id = 1`);
    await other.end();

    expect(
      await eventually(async () => (await getJson('/users/1')).body.name === 'Ada Lovelace', 15_000, 25),
    ).toBe(true);
    expect((await getJson('/stats')).body).toMatchObject({ loads: 2 });
  });

  it('a missing user is a 404 until the row is inserted; a bad id is a 400', async () => {
    expect((await getJson('/users/2')).status).toBe(404);
    expect((await getJson('/users/2')).status).toBe(404);
    await pool.query(`INSERT INTO ${q(schema)}.users VALUES (2, 'Grace', 'grace@example.com')`);
    expect(await eventually(async () => (await getJson('/users/2')).status === 200, 15_000, 25)).toBe(true);
    expect((await getJson('/users/two')).status).toBe(400);
  });
});
