/**
 * One client process of the harness: opens the subject, runs the workload between the times the
 * coordinator gives, sends its records back in batches, and answers the coordinator's checks.
 * Started by the coordinator only (it needs the IPC channel and HARNESS_WORKER).
 */
import type { PostgresCache } from '../../src/index.js';
import { now, sleep } from '../clock.js';
import { OperationRunner } from './operations.js';
import { Outbox } from './outbox.js';
import type { CoordinatorMessage, L1Row, WorkerConfig, WorkerMessage } from './protocol.js';
import { type OpenSubject, openSubject } from './subjects.js';
import { nextOp, readBack } from './workload.js';

const FENCE_TIMEOUT_MS = 10_000;
const ERROR_PAUSE_MS = 20;

const config = JSON.parse(process.env.HARNESS_WORKER ?? 'null') as WorkerConfig | null;
if (!config || !process.send) throw new Error('worker.ts is started by the harness coordinator');
const settings = config.workload;

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

// The coordinator is gone (finished, crashed or killed): nobody is left to report to.
process.on('disconnect', () => process.exit(0));
process.on('unhandledRejection', (error) => fail(error));

function fail(error: unknown): never {
  send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}

function watchCache(cache: PostgresCache, outbox: Outbox, namespace: string): void {
  cache.on('change', (change) => {
    if (change.op === 'set' && change.namespace === namespace)
      outbox.change({ version: change.version, at: now() });
  });
  cache.on('connected', () => outbox.listenerEvent({ event: 'connected', at: now() }));
  cache.on('disconnected', () => outbox.listenerEvent({ event: 'disconnected', at: now() }));
}

function l1Rows(cache: PostgresCache | undefined, namespace: string): L1Row[] {
  const rows: L1Row[] = [];
  for (const entry of cache?.l1Entries() ?? []) {
    if (entry.namespace === namespace && entry.key !== undefined) {
      rows.push({ key: entry.key, version: entry.version, value: entry.value });
    }
  }
  return rows;
}

async function main(worker: WorkerConfig): Promise<void> {
  const subject: OpenSubject = await openSubject(worker);
  const { cache } = subject;
  const outbox = new Outbox(send, () => cache?.coherent ?? true);
  if (cache && worker.instrumented) watchCache(cache, outbox, worker.namespace);
  const runner = new OperationRunner(subject, worker, (record) => outbox.loader(record));
  let stopping = false;
  /** Held reads, and wrap() calls the kill-lock-holder fault asked for, outside the lanes: the last batch waits for them. */
  const extraOps = new Set<Promise<void>>();
  const beside = (op: Promise<void>) => {
    extraOps.add(op);
    op.finally(() => extraOps.delete(op));
  };
  // Held reads wait for an event that may not come for 100 ms: run beside the lanes, they do not slow them.
  const holdShare = cache && worker.instrumented ? settings.holdShare : 0;

  const runWorkload = async (startAt: number, endAt: number) => {
    await sleep(startAt - now());
    outbox.start();
    const lane = async () => {
      while (!stopping && now() < endAt) {
        const op = nextOp(settings, now());
        if (op.kind === 'read' && holdShare > 0 && Math.random() < holdShare) {
          beside(runner.run(op, true).then((record) => outbox.op(record), fail));
          continue;
        }
        const record = await runner.run(op);
        outbox.op(record);
        // As an application would, pause after a failure rather than spin on a server that is down.
        if (record.error !== undefined) await sleep(ERROR_PAUSE_MS);
        // Only where the checks run: a comparison measures the workload as drawn, alike for every subject.
        const check = worker.instrumented ? readBack(record) : undefined;
        if (check) outbox.op({ ...(await runner.run(check)), readBack: true });
      }
    };
    await Promise.all(Array.from({ length: settings.concurrency }, lane));
    await Promise.all(extraOps);
    outbox.stop();
    send({ type: 'finished' });
  };

  const fence = async (key: string) => {
    const storeKey = `${worker.namespace}:${key}`;
    const arrived =
      cache && worker.cache.notifications
        ? cache.waitForChange(worker.namespace, storeKey, FENCE_TIMEOUT_MS)
        : Promise.resolve(true);
    send({ type: 'fence-armed' });
    send({
      type: 'fenced',
      arrived: await arrived,
      coherent: cache?.coherent ?? true,
      l1: l1Rows(cache, worker.namespace),
      stats: cache?.stats,
    });
  };

  process.on('message', (message: CoordinatorMessage) => {
    switch (message.type) {
      case 'start':
        runWorkload(message.startAt, message.endAt).catch(fail);
        return;
      case 'arm-fence':
        fence(message.key).catch(fail);
        return;
      case 'hold':
        // A victim: take the key's fill lock, say so, and never finish (the coordinator kills us).
        cache
          ?.wrap(message.key, () => {
            send({ type: 'holding', key: message.key });
            return new Promise<string>(() => undefined);
          })
          .catch(() => undefined);
        return;
      case 'wrap': {
        const op = runner.run({ kind: 'wrap', key: message.key }).then((record) => {
          outbox.op(record);
          // Sent now, also after the workload's last batch: the coordinator waits for this answer.
          outbox.flush();
          send({ type: 'wrapped', key: message.key });
        }, fail);
        beside(op);
        return;
      }
      case 'exit':
        stopping = true;
        subject
          .close()
          .catch(() => undefined)
          .finally(() => process.exit(0));
        return;
    }
  });
  send({ type: 'ready' });
}

main(config).catch(fail);
