// A first look: a Keyv cache on PostgreSQL. With no DATABASE_URL it starts a throwaway embedded server.
import Keyv from 'keyv';
import { PostgresAdapter } from '../src/index.js';
import { startEmbeddedPostgres } from '../support/embedded-postgres.js';

const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
const connectionString = process.env.DATABASE_URL ?? embedded?.url;

const store = new PostgresAdapter({ connectionString });
const users = new Keyv({ store, namespace: 'users' });

await users.set('1', { name: 'Ava' }, 60_000);
console.log('get users:1 ->', await users.get('1'));
console.log('has users:2 ->', await users.has('2'));
await users.clear();
console.log('after clear ->', await users.get('1'));

await users.disconnect();
await embedded?.stop();
