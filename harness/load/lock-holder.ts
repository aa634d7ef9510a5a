import { sleep } from '../clock.js';
import { onCleanup } from './cleanup.js';
import type { ClientProcess } from './fleet.js';

const READY_MS = 60_000;
const HOLDING_MS = 10_000;
/** How long the clients wait on the victim's lock before it is killed. */
const HOLD_MS = 300;

/**
 * The kill-lock-holder fault: a victim process (a cache like the clients, running no workload) takes
 * the fill lock of a cold key in wrap() and hangs in its loader; every client then calls wrap() on that
 * key and waits; the victim is SIGKILLed. PostgreSQL ends the dead session and frees its lock, and
 * exactly one client must then load the key for all of them.
 */
export class LockHolderFault {
  private standby: ClientProcess | undefined;
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
  }

  async strike(): Promise<string> {
    this.prepare();
    const victim = this.standby as ClientProcess;
    this.standby = undefined;
    try {
      await victim.expect('ready', READY_MS);
      const key = `wv${++this.strikes}`;
      victim.send({ type: 'hold', key });
      await victim.expect('holding', HOLDING_MS);
      for (const client of this.clients) client.send({ type: 'wrap', key });
      await sleep(HOLD_MS);
      victim.kill('SIGKILL');
      await victim.exited;
      return `victim pid ${victim.child.pid} SIGKILLed holding the fill lock of ${key}, ${this.clients.length} clients waiting`;
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
