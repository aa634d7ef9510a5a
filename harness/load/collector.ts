import type {
  ChangeRecord,
  ListenerRecord,
  LoaderRecord,
  OpRecord,
  Progress,
  WorkerMessage,
} from './protocol.js';

/** Everything one client process reported during a run. */
export interface ClientLog {
  index: number;
  ops: OpRecord[];
  changes: ChangeRecord[];
  listener: ListenerRecord[];
  loaders: LoaderRecord[];
  progress: Progress;
}

/** Gathers the clients' batches as they arrive. */
export class Collector {
  readonly logs = new Map<number, ClientLog>();

  add(index: number, batch: Extract<WorkerMessage, { type: 'batch' }>): void {
    const log = this.log(index);
    for (const op of batch.ops) log.ops.push(op);
    for (const change of batch.changes) log.changes.push(change);
    for (const event of batch.listener) log.listener.push(event);
    for (const loader of batch.loaders) log.loaders.push(loader);
    log.progress = batch.progress;
  }

  log(index: number): ClientLog {
    let log = this.logs.get(index);
    if (!log) {
      log = {
        index,
        ops: [],
        changes: [],
        listener: [],
        loaders: [],
        progress: { ops: 0, errors: 0, coherent: true },
      };
      this.logs.set(index, log);
    }
    return log;
  }

  /** Sums of the latest progress of every client. */
  totals(): { ops: number; errors: number; coherent: number; clients: number } {
    let ops = 0;
    let errors = 0;
    let coherent = 0;
    for (const { progress } of this.logs.values()) {
      ops += progress.ops;
      errors += progress.errors;
      if (progress.coherent) coherent++;
    }
    return { ops, errors, coherent, clients: this.logs.size };
  }
}
