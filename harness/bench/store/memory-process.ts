// Memory check for the store benchmark, in a fresh process: an L1 bounded at 50 MB, one million
// distinct sets through Keyv, and the RSS growth measured after a full GC.
import Keyv from 'keyv';
import { PostgresCache } from '../../../src/index.js';

const [connectionString, schema, countText] = process.argv.slice(2);
const count = Number(countText);
const gc = (globalThis as { gc?: () => void }).gc;
const cache = new PostgresCache({
  connectionString,
  schema,
  sweepInterval: 0,
  l1: { max: 0, maxBytes: 50 * 1024 * 1024 },
});
const keyv = new Keyv({ store: cache, namespace: 'memory' });
await cache.init();
await keyv.set('warm-up', 'x');
gc?.();
const start = process.memoryUsage().rss;
const batch = 1000;
const value = { payload: 'x'.repeat(64) };
for (let offset = 0; offset < count; offset += batch) {
  await keyv.setMany(
    Array.from({ length: batch }, (_, i) => ({ key: `k${offset + i}`, value: { ...value, n: offset + i } })),
  );
}
gc?.();
const end = process.memoryUsage().rss;
process.send?.({
  sets: count,
  rssGrowthMb: (end - start) / 1048576,
  l1Entries: cache.stats.l1.size,
  l1Mb: cache.stats.l1.bytes / 1048576,
});
await cache.disconnect();
