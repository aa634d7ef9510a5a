import type { BenchDatabase } from './database.js';
import { processCpuUs } from './proc.js';

/**
 * CPU time the server's backends of one client (found by `application_name`) spent between `start()`
 * and `stop()`, read from /proc: only when the server runs on this machine, undefined otherwise.
 * Background processes (WAL writer, checkpointer) are not counted.
 */
export class ServerCpuSampler {
  private before = new Map<number, number>();
  private available = true;

  constructor(
    private readonly db: BenchDatabase,
    private readonly applicationName: string,
  ) {}

  private async pids(): Promise<number[]> {
    const rows = await this.db.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [this.applicationName],
    );
    return rows.map((row) => row.pid);
  }

  async start(): Promise<void> {
    this.before.clear();
    this.available = true;
    for (const pid of await this.pids()) {
      const cpu = await processCpuUs(pid);
      if (cpu === undefined) this.available = false;
      else this.before.set(pid, cpu);
    }
  }

  /** Microseconds of backend CPU since `start()`; backends that appeared since count from zero. */
  async stop(): Promise<number | undefined> {
    if (!this.available) return undefined;
    let total = 0;
    for (const pid of await this.pids()) {
      const cpu = await processCpuUs(pid);
      if (cpu === undefined) return undefined;
      total += cpu - (this.before.get(pid) ?? 0);
    }
    return total;
  }
}
