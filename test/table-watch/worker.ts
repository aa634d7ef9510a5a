import { fileURLToPath } from 'node:url';
import { JsonLinesWorker } from '../support/json-lines-worker.js';

const WATCH_WORKER = fileURLToPath(new URL('../support/processes/watch-worker.ts', import.meta.url));

/** Drives test/support/processes/watch-worker.ts: an application process with table-change invalidation. */
export class WatchWorker extends JsonLinesWorker {
  constructor(schema: string) {
    super(WATCH_WORKER, [schema]);
  }
}

export async function startWatchWorkers(schema: string, count: number): Promise<WatchWorker[]> {
  const workers = Array.from({ length: count }, () => new WatchWorker(schema));
  try {
    await Promise.all(workers.map((worker) => worker.ready));
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.stop()));
    throw error;
  }
  return workers;
}
