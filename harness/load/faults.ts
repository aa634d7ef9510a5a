import { now } from '../clock.js';
import type { HarnessDatabase } from './database.js';
import type { LockHolderFault } from './lock-holder.js';
import type { FaultKind } from './options.js';

export interface FaultEvent {
  kind: FaultKind;
  /** When the fault was injected. */
  at: number;
  /** When the injection itself returned (the restart completed, the kill query answered). */
  done: number;
  detail: string;
  error?: string;
}

/** How long the embedded server stays down in a restart-postgres fault. */
const RESTART_DOWN_MS = 300;

export interface FaultTargets {
  db: HarnessDatabase;
  /** application_name of the clients' LISTEN connections (this run's only). */
  listenerApplicationName: string;
  lockHolder: LockHolderFault;
}

/** Whether a fault can run here; undefined when it can, else why not. */
export function unsupportedFault(
  kind: FaultKind,
  db: HarnessDatabase,
  wrapAvailable: boolean,
): string | undefined {
  if (kind === 'restart-postgres' && !db.restart) {
    return 'restart-postgres needs the embedded server: run without DATABASE_URL';
  }
  if (kind === 'kill-lock-holder' && !wrapAvailable) {
    return 'kill-lock-holder needs PostgresCache.wrap(), which this build does not have';
  }
  return undefined;
}

/** Injects the chosen faults in turn, one every interval, while the workload runs; logs each one. */
export class FaultInjector {
  readonly events: FaultEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private turn = 0;

  constructor(
    private readonly kinds: FaultKind[],
    private readonly intervalMs: number,
    private readonly targets: FaultTargets,
  ) {}

  /** Schedules faults between `startAt` and `endAt`, leaving the last half interval quiet. */
  start(startAt: number, endAt: number): void {
    if (this.kinds.length === 0) return;
    if (this.kinds.includes('kill-lock-holder')) this.targets.lockHolder.prepare();
    const tick = () => {
      if (now() > endAt - this.intervalMs / 2) return this.cancel();
      if (this.running) return;
      const kind = this.kinds[this.turn++ % this.kinds.length] as FaultKind;
      this.running = this.inject(kind).finally(() => {
        this.running = undefined;
      });
    };
    const firstIn = Math.max(0, startAt + this.intervalMs - now());
    this.timer = setTimeout(() => {
      this.timer = setInterval(tick, this.intervalMs);
      tick();
    }, firstIn);
  }

  /** Stops scheduling and waits for a fault in progress (a restart) to finish. */
  async stop(): Promise<void> {
    this.cancel();
    await this.running;
    await this.targets.lockHolder.stop();
  }

  private cancel(): void {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async inject(kind: FaultKind): Promise<void> {
    const at = now();
    try {
      const detail = await this.run(kind);
      this.events.push({ kind, at, done: now(), detail });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.events.push({ kind, at, done: now(), detail: 'failed', error: message });
    }
  }

  private async run(kind: FaultKind): Promise<string> {
    const { db, listenerApplicationName } = this.targets;
    switch (kind) {
      case 'kill-listeners': {
        const { rows } = await db.admin.query<{ killed: string }>(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS killed
             FROM pg_stat_activity WHERE application_name = $1`,
          [listenerApplicationName],
        );
        return `${rows[0]?.killed ?? 0} listener connections terminated`;
      }
      case 'restart-postgres':
        await db.restart?.(RESTART_DOWN_MS);
        return `server stopped, down ${RESTART_DOWN_MS} ms, started`;
      case 'kill-lock-holder':
        return this.targets.lockHolder.strike();
    }
  }
}
