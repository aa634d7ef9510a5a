// Runs the example service. With no DATABASE_URL it starts a throwaway embedded PostgreSQL.
//
//   npx tsx examples/table-invalidation/main.ts
//   curl localhost:3000/users/1          # loads once, then answers from the cache
//   psql "<the database URL it prints>" -c "UPDATE users SET name = 'Ada L.' WHERE id = 1"
//   curl localhost:3000/users/1          # the new name: the UPDATE dropped the cached answer
import pg from 'pg';
import { installTableWatch, PostgresCache } from '../../src/index.js';
import { startEmbeddedPostgres } from '../../support/embedded-postgres.js';
import { buildApp } from './app.js';

const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
const connectionString = process.env.DATABASE_URL ?? (embedded?.url as string);
const db = new pg.Pool({ connectionString });

await db.query(
  'CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL)',
);
await db.query(`INSERT INTO users VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com')
                ON CONFLICT (id) DO NOTHING`);
// Normally done once, by a migration (or `npx postgres-cache watch install users --apply`).
await installTableWatch(db, { table: 'users' });

const cache = new PostgresCache({ connectionString });
await cache.init();
const app = buildApp({ cache, db });
const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
// The URL is printed either way: the UPDATE in the comment above needs it.
console.log(`listening on ${address}; database ${connectionString}${embedded ? ' (embedded)' : ''}`);

const stop = async () => {
  await app.close();
  await cache.disconnect();
  await db.end();
  await embedded?.stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
