// Awaits one call of a PostgresCache with nothing else in the process to keep it alive, then prints how
// it settled and how long it took. Node exits with 13 when a top-level await never settles.
//   init  the listener's server refuses connections: init() fails after connectionTimeout.
//   wrap  another process holds the key's fill lock (the test does): wrap() waits, then loads itself.
import { PostgresCache } from '../../../src/index.js';

const [schema, mode] = process.argv.slice(2);
const cache = new PostgresCache({
  schema,
  connectionTimeout: 1000,
  ...(mode === 'init' ? { listenerConnectionString: 'postgres://postgres@127.0.0.1:1/test' } : {}),
});
cache.on('error', () => undefined);
const started = Date.now();
let outcome: string;
try {
  if (mode === 'init') {
    await cache.init();
    outcome = 'resolved';
  } else {
    outcome = `resolved ${await cache.wrap('k', async () => 'loaded', { lockTimeout: 1500 })}`;
  }
} catch (error) {
  outcome = `rejected ${(error as { code?: string }).code}`;
}
const ms = Date.now() - started;
await cache.disconnect();
process.stdout.write(`${JSON.stringify({ outcome, ms })}\n`);
