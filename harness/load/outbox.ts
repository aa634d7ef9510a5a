import type {
  ChangeRecord,
  ListenerRecord,
  LoaderRecord,
  OpRecord,
  Progress,
  WorkerMessage,
} from './protocol.js';

const FLUSH_INTERVAL_MS = 250;

/**
 * A client's records on their way to the coordinator: buffered and sent in batches every 250 ms, so
 * the coordinator can show progress and a killed client loses at most its last quarter second.
 */
export class Outbox {
  private ops: OpRecord[] = [];
  private changes: ChangeRecord[] = [];
  private listener: ListenerRecord[] = [];
  private loaders: LoaderRecord[] = [];
  private opCount = 0;
  private errorCount = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (message: WorkerMessage) => void,
    private readonly coherent: () => boolean,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }

  op(record: OpRecord): void {
    this.ops.push(record);
    this.opCount++;
    if (record.error !== undefined) this.errorCount++;
  }

  change(record: ChangeRecord): void {
    this.changes.push(record);
  }

  listenerEvent(record: ListenerRecord): void {
    this.listener.push(record);
  }

  loader(record: LoaderRecord): void {
    this.loaders.push(record);
  }

  flush(): void {
    const progress: Progress = { ops: this.opCount, errors: this.errorCount, coherent: this.coherent() };
    this.send({
      type: 'batch',
      ops: this.ops,
      changes: this.changes,
      listener: this.listener,
      loaders: this.loaders,
      progress,
    });
    this.ops = [];
    this.changes = [];
    this.listener = [];
    this.loaders = [];
  }
}
