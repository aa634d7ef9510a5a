import { PostgresAdapter } from '../../src/index.js';
import { withUrlParameter } from '../bench/lib/database.js';
import { now } from '../clock.js';
import { onCleanup } from './cleanup.js';
import { type ClientLog, Collector } from './collector.js';
import type { HarnessDatabase } from './database.js';
import { type FaultEvent, FaultInjector } from './faults.js';
import { ClientProcess, everyReply } from './fleet.js';
import { LockHolderFault } from './lock-holder.js';
import type { FaultKind } from './options.js';
import { PREFILL_WRITER, prefill } from './prefill.js';
import type { ProgressDisplay } from './progress.js';
import type { CacheSettings, SubjectName, WorkerConfig, WorkloadSettings } from './protocol.js';
import { type SettledState, settle } from './settle.js';

const READY_TIMEOUT_MS = 60_000;
/** How long after the end of the workload a client may take to finish its last operations. */
const FINISH_GRACE_MS = 30_000;
/** Clients start together, a moment after the go, on the shared clock. */
const START_DELAY_MS = 300;

export interface RunPlace {
  db: HarnessDatabase;
  /** Unique per harness run: names this run's connections (and so the faults' targets). */
  runId: string;
  schema: string;
  namespace: string;
  redisUrl: string;
  display: ProgressDisplay;
}

export interface LoadSettings {
  subject: SubjectName;
  clients: number;
  durationMs: number;
  cache: CacheSettings;
  workload: WorkloadSettings;
  faults: FaultKind[];
  faultIntervalMs: number;
  /** See WorkerConfig.instrumented. */
  instrumented: boolean;
}

export interface LoadRun {
  subject: SubjectName;
  startAt: number;
  endAt: number;
  logs: ClientLog[];
  /** The writes that filled every key before the start: part of the keys' histories, not of the figures. */
  prefill: ClientLog;
  faults: FaultEvent[];
  /** The state after every event was applied (instrumented postgres-cache runs: the peers have no L1). */
  settled: SettledState | undefined;
}

export function listenerApplicationName(runId: string): string {
  return `pgcache-harness-${runId}-listener`;
}

/** A client's settings; a victim (kill-lock-holder) gets the same, but is never told to start the workload. */
function clientConfig(place: RunPlace, settings: LoadSettings, index: number): WorkerConfig {
  return {
    index,
    subject: settings.subject,
    url: withUrlParameter(place.db.url, 'application_name', `pgcache-harness-${place.runId}`),
    listenerUrl: withUrlParameter(place.db.url, 'application_name', listenerApplicationName(place.runId)),
    redisUrl: place.redisUrl,
    schema: place.schema,
    namespace: place.namespace,
    cache: settings.cache,
    workload: settings.workload,
    instrumented: settings.instrumented,
  };
}

/** Runs the workload once: N client processes against one subject, faults on the side, then the settle. */
export async function runLoad(place: RunPlace, settings: LoadSettings): Promise<LoadRun> {
  const { db, display } = place;
  const collector = new Collector();
  const onBatch = (client: ClientProcess, batch: Parameters<Collector['add']>[1]) =>
    collector.add(client.index, batch);
  const clients = Array.from(
    { length: settings.clients },
    (_, index) => new ClientProcess(clientConfig(place, settings, index), onBatch),
  );
  const stopClients = () => Promise.all(clients.map((client) => client.stop()));
  onCleanup(stopClients);
  let victims = settings.clients;
  const lockHolder = new LockHolderFault(
    () => new ClientProcess(clientConfig(place, settings, victims++), onBatch),
    clients,
  );
  try {
    const [prefilled] = await Promise.all([
      prefill(clientConfig(place, settings, PREFILL_WRITER)),
      everyReply(clients, 'ready', READY_TIMEOUT_MS),
      // The first victim starts with the clients: started with the workload, it was ready only after it ended.
      settings.faults.includes('kill-lock-holder') ? lockHolder.warmUp() : undefined,
    ]);
    const startAt = now() + START_DELAY_MS;
    const endAt = startAt + settings.durationMs;
    for (const client of clients) {
      collector.log(client.index);
      client.send({ type: 'start', startAt, endAt });
    }
    const injector = new FaultInjector(settings.faults, settings.faultIntervalMs, {
      db,
      listenerApplicationName: listenerApplicationName(place.runId),
      lockHolder,
    });
    injector.start(startAt, endAt);
    const ticker = setInterval(() => {
      const totals = collector.totals();
      const last = injector.events.at(-1);
      display.update({
        elapsedMs: Math.max(0, now() - startAt),
        totalMs: settings.durationMs,
        ...totals,
        faults: injector.events.length,
        lastFault: last ? `${last.kind}: ${last.detail}` : undefined,
      });
    }, 250);
    try {
      await everyReply(clients, 'finished', settings.durationMs + START_DELAY_MS + FINISH_GRACE_MS);
    } finally {
      clearInterval(ticker);
      display.clearStatus();
      await injector.stop();
    }
    const settled =
      settings.subject === 'postgres-cache' && settings.instrumented
        ? await settleOurs(place, settings, clients)
        : undefined;
    return {
      subject: settings.subject,
      startAt,
      endAt,
      logs: [...collector.logs.values()],
      prefill: prefilled,
      faults: injector.events,
      settled,
    };
  } finally {
    await stopClients();
  }
}

async function settleOurs(
  place: RunPlace,
  settings: LoadSettings,
  clients: ClientProcess[],
): Promise<SettledState> {
  const adapter = new PostgresAdapter({
    connectionString: withUrlParameter(place.db.url, 'application_name', 'pgcache-harness-fence'),
    schema: place.schema,
    migrate: false,
    sweepInterval: 0,
    poolSize: 1,
  });
  try {
    return await settle(clients, place.db, adapter, place.namespace, settings.cache);
  } finally {
    await adapter.disconnect();
  }
}
