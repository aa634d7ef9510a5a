// A first look: a Keyv cache on PostgreSQL with a coherent L1. With no DATABASE_URL it starts a
// throwaway embedded server; with one, it works in a schema of its own and drops it at the end.
import Keyv from 'keyv';
import pg from 'pg';
import { PostgresCache } from '../src/index.js';
import { startEmbeddedPostgres } from '../support/embedded-postgres.js';

const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
const connectionString = process.env.DATABASE_URL ?? embedded?.url;
const schema = 'postgres_cache_quick_start';

const cache = new PostgresCache({
  connectionString,
  schema,
  l1: { max: 10_000, maxBytes: 50 * 1024 * 1024 },
});
await cache.init();
const users = new Keyv({ store: cache, namespace: 'users' });

await users.set('1', { name: 'Ava' }, 60_000);
console.log('get users:1 ->', await users.get('1'));
console.log('has users:2 ->', await users.has('2'));

let loads = 0;
const loadUser = async (id: number) => {
  loads++;
  return { id, name: 'Nova' };
};
const [a, b] = await Promise.all([cache.wrap('2', () => loadUser(2)), cache.wrap('2', () => loadUser(2))]);
console.log('wrap users:2 ->', a, b, `(loader ran ${loads} time)`);
console.log('stats ->', cache.stats.l1, cache.stats.postgres);

await users.clear();
console.log('after clear ->', await users.get('1'));

await cache.disconnect();
const admin = new pg.Client({ connectionString });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await admin.end();
await embedded?.stop();
