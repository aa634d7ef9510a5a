import type { ClientLog } from './collector.js';
import { OperationRunner } from './operations.js';
import type { OpRecord, WorkerConfig } from './protocol.js';
import { openSubject } from './subjects.js';

const CONCURRENCY = 16;
/** The writer id of the prefill's writes (clients count from 0, kill-lock-holder victims after them). */
export const PREFILL_WRITER = 1_000_000;

export const writerName = (writer: number) =>
  writer === PREFILL_WRITER ? 'the prefill' : `client ${writer}`;

/**
 * Writes every workload key once before the clients start, so a run measures a warm cache rather than
 * an empty table. It writes through the subject as a client does (Keyv, the version tap), from the
 * coordinator, and its writes join the keys' histories under a writer id of their own.
 */
export async function prefill(config: WorkerConfig): Promise<ClientLog> {
  const subject = await openSubject(config);
  const runner = new OperationRunner(subject, config, () => undefined);
  const ops: OpRecord[] = [];
  let next = 0;
  const lane = async () => {
    while (next < config.workload.keys) ops.push(await runner.run({ kind: 'write', key: `k${next++}` }));
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  } finally {
    await subject.close();
  }
  const failed = ops.find((op) => op.error !== undefined);
  if (failed) throw new Error(`prefill: writing ${failed.key} failed (${failed.error})`);
  return {
    index: config.index,
    ops,
    changes: [],
    listener: [],
    loaders: [],
    progress: { ops: ops.length, errors: 0, coherent: true },
  };
}
