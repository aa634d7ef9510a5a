import { fileURLToPath } from 'node:url';
import { JsonLinesWorker } from './json-lines-worker.js';

export { WorkerError } from './json-lines-worker.js';

const CACHE_WORKER = fileURLToPath(new URL('./processes/cache-worker.ts', import.meta.url));

/** Drives test/support/processes/cache-worker.ts: one PostgresCache in a real child process. */
export class CacheWorker extends JsonLinesWorker {
  constructor(schema: string, env: Record<string, string> = {}) {
    super(CACHE_WORKER, [schema], env);
  }
}

export async function startWorkers(
  schema: string,
  count: number,
  env: Record<string, string> = {},
): Promise<CacheWorker[]> {
  const workers = Array.from({ length: count }, () => new CacheWorker(schema, env));
  await Promise.all(workers.map((worker) => worker.ready));
  await Promise.all(workers.map((worker) => worker.call('init')));
  return workers;
}
