import { now, sleep } from '../clock.js';
import { onCleanup } from './cleanup.js';
import type { ClientProcess } from './fleet.js';

const READY_MS = 60_000;
const HOLDING_MS = 10_000;
/** How long the clients wait on the victim's lock before it is killed. */
const HOLD_MS = 300;
/** How long the clients' wrap() calls may take once the victim is dead: beyond wrap()'s lockTimeout (10 s). */
const WRAPPED_MS = 30_000;

/**
 * The kill-lock-holder fault: a victim process (a cache like the clients, running no workload) takes
 * the fill lock of a cold key in wrap() and hangs in its loader; every client then calls wrap() on that
 * key and waits; the victim is SIGKILLed. PostgreSQL ends the dead session and frees its lock, and
 * exactly one client must then load the key for all of them.
 */
export class LockHolderFault {
  private standby: ClientProcess | undefined;
  /** The standby's 'ready', awaited once (a message is consumed by the first wait for it). */
  private standbyReady: Promise<unknown> | undefined;
  private strikes = 0;

  constructor(
    private readonly spawnVictim: () => ClientProcess,
    private readonly clients: ClientProcess[],
  ) {}

  /** Starts the next victim ahead of time: tsx start-up and the cache's init take a second or more. */
  prepare(): void {
    if (this.standby) return;
    const victim = this.spawnVictim();
    onCleanup(() => victim.stop());
    this.standby = victim;
    this.standbyReady = victim.expect('ready', READY_MS);
    // Awaited by the strike; a victim that dies before is reported there.
    this.standbyReady.catch(() => undefined);
  }

  /** Starts the first victim and waits until it is ready: before the workload, so that a strike lands inside it. */
  async warmUp(): Promise<void> {
    this.prepare();
    await this.standbyReady;
  }

  async strike(): Promise<string> {
    this.prepare();
    const victim = this.standby as ClientProcess;
    const ready = this.standbyReady;
    this.standby = undefined;
    this.standbyReady = undefined;
    try {
      await ready;
      const key = `wv${++this.strikes}`;
      victim.send({ type: 'hold', key });
      await victim.expect('holding', HOLDING_MS);
      for (const client of this.clients) client.send({ type: 'wrap', key });
      await sleep(HOLD_MS);
      victim.kill('SIGKILL');
      await victim.exited;
      // Each client answers once its call has returned and its record is on its way: a call still running
      // when the workload ends (or answered after it) would otherwise never reach the stampede check.
      await wrappedBy(this.clients, key, WRAPPED_MS);
      return `victim pid ${victim.child.pid} SIGKILLed holding the fill lock of ${key}, ${this.clients.length} clients waited and were answered`;
    } finally {
      victim.kill();
      // The next victim starts now, in the background, ready for the next turn.
      this.prepare();
    }
  }

  async stop(): Promise<void> {
    await this.standby?.stop();
    this.standby = undefined;
  }
}

/** Waits for every client's answer that its wrap() of `key` returned; a late answer to an earlier strike is skipped. */
async function wrappedBy(clients: ClientProcess[], key: string, timeoutMs: number): Promise<void> {
  const deadline = now() + timeoutMs;
  await Promise.all(
    clients.map(async (client) => {
      while ((await client.expect('wrapped', Math.max(1, deadline - now()))).key !== key) {
        // An answer for another key: keep waiting for this one.
      }
    }),
  );
}
