// A listening process for the store benchmark: a PostgresCache, as an application's. Asked to, it also records
// when each change event for a key arrives, on the machine-wide clock, and hands the record to its parent
// over IPC; it records nothing otherwise (the set scenario measures a cache, not the recording).

import { type CacheChange, PostgresCache } from '../../../src/index.js';
import { now } from '../../clock.js';

const [connectionString, schema] = process.argv.slice(2);
const cache = new PostgresCache({ connectionString, schema, sweepInterval: 0, poolSize: 2 });
const arrivals = new Map<string, number>();
const record = (change: CacheChange) => {
  if (change.op === 'set' && change.key !== undefined && !arrivals.has(change.key)) {
    arrivals.set(change.key, now());
  }
};

process.on('message', async (message: { cmd: string }) => {
  if (message.cmd === 'record') {
    cache.on('change', record);
    process.send?.({ recording: true });
  } else if (message.cmd === 'arrivals') {
    cache.off('change', record);
    process.send?.({ arrivals: [...arrivals] });
    arrivals.clear();
  } else if (message.cmd === 'stop') {
    await cache.disconnect();
    process.disconnect?.();
  }
});

await cache.init();
process.send?.({ ready: true });
