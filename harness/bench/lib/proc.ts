import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/* Readers of Linux /proc CPU accounting; each returns undefined where /proc cannot tell. */

/** Clock ticks per second of /proc times (/proc/stat, and /proc/<pid>/stat when schedstat is missing). */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time of one process in microseconds: /proc/<pid>/schedstat (ns) or else /proc/<pid>/stat (ticks). */
export async function processCpuUs(pid: number): Promise<number | undefined> {
  try {
    const schedstat = await readFile(`/proc/${pid}/schedstat`, 'utf8');
    const runNs = Number(schedstat.split(' ')[0]);
    if (Number.isFinite(runNs)) return runNs / 1000;
  } catch {
    // fall through to /proc/<pid>/stat
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    return ((userTicks + systemTicks) * 1e6) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * Busy CPU time of the whole machine so far, in microseconds summed over all cores (from /proc/stat;
 * undefined elsewhere). The difference between two readings, minus what the benchmark's own
 * processes used, shows how much else ran during a measurement.
 */
export async function machineBusyCpuUs(): Promise<number | undefined> {
  try {
    const stat = await readFile('/proc/stat', 'utf8');
    const line = stat.split('\n').find((row) => row.startsWith('cpu '));
    if (!line) return undefined;
    // user nice system idle iowait irq softirq steal ...
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = [user, nice, system, irq, softirq, steal].reduce<number>(
      (sum, value) => sum + (value ?? 0),
      0,
    );
    return (ticks * 1e6) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
