// Uses a PostgresCache with everything on (L1, listener, sweeper), disconnects, and must then exit by itself.
// With `early`, it disconnects right after construction, while the listener is still connecting.
import Keyv from 'keyv';
import { PostgresCache } from '../../../src/index.js';

const [schema, mode] = process.argv.slice(2);
const cache = new PostgresCache({ schema, sweepInterval: 100 });
if (mode === 'early') {
  await cache.disconnect();
} else {
  await cache.init();
  const keyv = new Keyv({ store: cache });
  await keyv.set('k', 'v', 50);
  await keyv.get('k');
  await keyv.disconnect();
}
process.stdout.write('disconnected\n');
