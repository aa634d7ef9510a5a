import { now, sleep } from '../clock.js';
import type { LoaderRecord, OpRecord, WorkerConfig } from './protocol.js';
import type { OpenSubject } from './subjects.js';
import { clearedSeen, inOpContext, type OpContext } from './version-tap.js';
import { decodeValue, encodeValue, LOADER_MS, type PlannedOp } from './workload.js';

/** The `code` of a PostgresCacheError (or a driver's error), else the error's name. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'unknown';
}

/** Runs planned operations against the subject and records each one with its times and what it saw. */
export class OperationRunner {
  private seq = 0;

  constructor(
    private readonly subject: OpenSubject,
    private readonly config: WorkerConfig,
    private readonly onLoaderStart: (record: LoaderRecord) => void,
  ) {}

  /** @param hold a read whose answer from PostgreSQL the version tap holds for the key's next change event. */
  async run(op: PlannedOp, hold = false): Promise<OpRecord> {
    const record: OpRecord = { kind: op.kind, key: op.key, start: now(), end: 0 };
    const context: OpContext = { effects: [], hold: hold && op.kind === 'read' };
    try {
      await inOpContext(context, () => this.invoke(op, record, context));
    } catch (error) {
      record.error = errorCode(error);
    }
    record.end = now();
    if (context.effects.length > 0) record.effects = context.effects;
    if (context.heldMs !== undefined) record.heldMs = context.heldMs;
    return record;
  }

  private async invoke(op: PlannedOp, record: OpRecord, context: OpContext): Promise<void> {
    const { keyv, cache } = this.subject;
    switch (op.kind) {
      case 'read': {
        const value = await keyv.get(op.key);
        record.seen = decodeValue(value);
        record.tier = cache ? (context.tier ?? 'postgres') : 'store';
        return;
      }
      case 'write': {
        record.seq = ++this.seq;
        const value = encodeValue(this.config.index, record.seq, this.config.workload.valueSize);
        await keyv.set(op.key, value, this.config.workload.ttlMs);
        return;
      }
      case 'delete':
        await keyv.delete(op.key);
        return;
      case 'clear':
        // Keyv's clear() empties its namespace: for postgres-cache one marker row (version tapped), for the
        // peers their own delete of the namespace's keys.
        await keyv.clear();
        return;
      case 'wrap': {
        if (!cache) throw new Error('wrap() is postgres-cache only');
        const value = await cache.wrap<string>(op.key, () => this.load(op.key, record));
        record.seen = decodeValue(value);
        record.tier ??= context.tier ?? 'postgres';
        return;
      }
    }
  }

  /** The loader of a cold key: reported as it starts, slow enough for the other processes to arrive. */
  private async load(key: string, record: OpRecord): Promise<string> {
    const seq = ++this.seq;
    record.seq = seq;
    record.tier = 'loader';
    this.onLoaderStart({ key, seq, start: now(), cleared: clearedSeen() });
    await sleep(LOADER_MS);
    return encodeValue(this.config.index, seq, this.config.workload.valueSize);
  }
}
