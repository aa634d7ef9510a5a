// Memory check for the store benchmark, in a fresh process: an L1 bounded at 50 MB, one million
// distinct sets through Keyv, and the RSS growth measured after a full GC and a short settle.
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import Keyv from 'keyv';
import { PostgresCache } from '../../../src/index.js';

/**
 * When RSS is read after the sets, in ms: at once, shortly after, and at rest. V8 releases the pages a
 * full GC emptied in the background, and shrinks its young generation and compacts old space only once
 * the process has been idle a while (its memory reducer runs some seconds apart).
 */
const READ_AT_MS = [0, 2000, 10_000, 30_000];

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
const startHeap = heapSpaces();
const batch = 1000;
const value = { payload: 'x'.repeat(64) };
for (let offset = 0; offset < count; offset += batch) {
  await keyv.setMany(
    Array.from({ length: batch }, (_, i) => ({ key: `k${offset + i}`, value: { ...value, n: offset + i } })),
  );
}
const finished = Date.now();
const rssGrowthMb: number[] = [];
for (const at of READ_AT_MS) {
  await sleep(Math.max(0, finished + at - Date.now()));
  gc?.();
  rssGrowthMb.push((process.memoryUsage().rss - start) / 1048576);
}
process.send?.({
  sets: count,
  readAtMs: READ_AT_MS,
  rssGrowthMb,
  // V8's heap spaces (used / committed MB), at the start and at rest.
  heapAtStart: startHeap,
  heapAtEnd: heapSpaces(),
  l1Entries: cache.stats.l1.size,
  l1Mb: cache.stats.l1.bytes / 1048576,
});
await cache.disconnect();

function heapSpaces(): Record<string, string> {
  const spaces: Record<string, string> = {};
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_size === 0) continue;
    const mb = (bytes: number) => (bytes / 1048576).toFixed(1);
    spaces[space.space_name] = `${mb(space.space_used_size)} / ${mb(space.space_size)}`;
  }
  return spaces;
}
