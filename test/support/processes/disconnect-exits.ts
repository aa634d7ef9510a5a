// Uses a PostgresCache with everything on (L1, listener, sweeper), disconnects, and must then exit by itself.
import Keyv from 'keyv';
import { PostgresCache } from '../../../src/index.js';

const cache = new PostgresCache({ schema: process.argv[2], sweepInterval: 100 });
await cache.init();
const keyv = new Keyv({ store: cache });
await keyv.set('k', 'v', 50);
await keyv.get('k');
await keyv.disconnect();
process.stdout.write('disconnected\n');
