import { formatOps } from '../bench/lib/report.js';

export interface ProgressStatus {
  elapsedMs: number;
  totalMs: number;
  ops: number;
  errors: number;
  /** Clients whose L1 is in use (listener connected). */
  coherent: number;
  clients: number;
  faults: number;
  lastFault: string | undefined;
}

/**
 * The live view of a run: on a terminal one status line rewritten in place; otherwise (CI, a pipe)
 * a plain line every few seconds.
 */
export class ProgressDisplay {
  private readonly tty: boolean;
  private lastOps = 0;
  private lastAt = 0;
  private lastPrinted = 0;
  private statusShown = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly plainEveryMs = 2000,
  ) {
    this.tty = out.isTTY === true;
  }

  /** A line that stays (a phase starting, a fault). */
  note(text: string): void {
    this.clearStatus();
    this.out.write(`${text}\n`);
  }

  update(status: ProgressStatus): void {
    const rate =
      status.elapsedMs > this.lastAt
        ? ((status.ops - this.lastOps) * 1000) / (status.elapsedMs - this.lastAt)
        : 0;
    const line = [
      `${(status.elapsedMs / 1000).toFixed(1)}/${(status.totalMs / 1000).toFixed(0)} s`,
      `ops ${formatOps(status.ops)} (${formatOps(rate)}/s)`,
      `errors ${formatOps(status.errors)}`,
      `listening ${status.coherent}/${status.clients}`,
      `faults ${status.faults}${status.lastFault ? ` (last: ${status.lastFault})` : ''}`,
    ].join('  ');
    if (this.tty) {
      this.out.write(`\r\x1b[K  ${line}`);
      this.statusShown = true;
      this.lastOps = status.ops;
      this.lastAt = status.elapsedMs;
    } else if (status.elapsedMs - this.lastPrinted >= this.plainEveryMs) {
      this.out.write(`  ${line}\n`);
      this.lastPrinted = status.elapsedMs;
      this.lastOps = status.ops;
      this.lastAt = status.elapsedMs;
    }
  }

  clearStatus(): void {
    if (this.tty && this.statusShown) this.out.write('\r\x1b[K');
    this.statusShown = false;
  }
}
