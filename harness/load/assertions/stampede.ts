import type { ClientLog } from '../collector.js';
import type { FaultEvent } from '../faults.js';
import type { AssertionResult } from '../report/model.js';
import { valueId } from './history.js';
import type { Findings } from './reads.js';

const NAME = 'stampede: one loader run per cold key under wrap()';
const EXAMPLES_KEPT = 5;

export interface StampedeFigures {
  /** Cold keys at least one wrap() call returned a value for. */
  keys: number;
  /** wrap() calls that succeeded, and how many of them ran the loader themselves. */
  calls: number;
  loaded: number;
  /** Loader runs whose value was returned, and runs cut short (their wrap() call failed). */
  effectiveRuns: number;
  cutShortRuns: number;
  /** Keys loaded once more after a clear() emptied them in between (which is allowed). */
  reloadedAfterClear: number;
}

/**
 * Every loader run is logged as it starts, in every client. For each cold key, the runs whose value some
 * wrap() call returned must be exactly one: more means two processes loaded the same key, none means a
 * value came from nowhere. A run whose own call failed (a fault cut it short) stored nothing; it is
 * counted apart. The kill-lock-holder victim's runs are not logged: it is killed inside them. A clear()
 * empties the cold keys too, so a key may be loaded once more after one. Each run notes the clear marker's
 * version its fill's stamp saw under the lock (before its loader); a second run is allowed when a clear
 * committed between the two stamps (its marker is newer: the key was emptied, or the first run's write
 * refused), or when the first run's own process had a clear in flight while that run was under way (a
 * fill stores nothing after its own process sent a clear, which may commit only after the next stamp).
 */
export function checkStampede(
  logs: ClientLog[],
  wrapShare: number,
  faults: FaultEvent[] = [],
): { result: AssertionResult; figures: StampedeFigures | undefined } {
  const runs = new Map<string, Set<string>>();
  const returned = new Map<string, Set<string>>();
  const figures: StampedeFigures = {
    keys: 0,
    calls: 0,
    loaded: 0,
    effectiveRuns: 0,
    cutShortRuns: 0,
    reloadedAfterClear: 0,
  };
  const stamps = new Map<string, RunStamp>();
  const add = (map: Map<string, Set<string>>, key: string, value: string) => {
    const set = map.get(key) ?? new Set<string>();
    set.add(value);
    map.set(key, set);
  };
  for (const log of logs) {
    for (const loader of log.loaders) {
      add(runs, loader.key, valueId(log.index, loader.seq));
      stamps.set(valueId(log.index, loader.seq), {
        loader: loader.start,
        end: Number.NaN,
        cleared: loader.cleared,
        ownClears: [],
      });
    }
    const clears = log.ops.filter((op) => op.kind === 'clear');
    for (const op of log.ops) {
      const stamp =
        op.kind === 'wrap' && op.seq !== undefined ? stamps.get(valueId(log.index, op.seq)) : undefined;
      if (stamp) {
        stamp.end = op.end;
        stamp.ownClears = clears;
      }
      if (op.kind !== 'wrap' || op.error !== undefined || !op.seen) continue;
      figures.calls++;
      if (op.tier === 'loader') figures.loaded++;
      add(returned, op.key, valueId(...op.seen));
    }
  }
  if (figures.calls === 0) {
    const why =
      wrapShare > 0 ? 'no wrap() call succeeded' : 'no wrap() calls in this workload (--wrap-share 0)';
    return {
      result: { id: 4, name: NAME, status: wrapShare > 0 ? 'failed' : 'skipped', summary: why, examples: [] },
      figures: undefined,
    };
  }
  const findings: Findings = { count: 0, examples: [] };
  for (const [key, values] of returned) {
    figures.keys++;
    const keyRuns = runs.get(key) ?? new Set<string>();
    const effective = [...keyRuns].filter((run) => values.has(run));
    figures.effectiveRuns += effective.length;
    figures.cutShortRuns += keyRuns.size - effective.length;
    const unexplained = [...values].filter((value) => !keyRuns.has(value));
    const clearedBetween =
      effective.length > 1 &&
      separatedByClears(
        effective.map(
          (run) =>
            stamps.get(run) ?? { loader: Number.NaN, end: Number.NaN, cleared: undefined, ownClears: [] },
        ),
      );
    if (clearedBetween) figures.reloadedAfterClear++;
    if ((effective.length !== 1 && !clearedBetween) || unexplained.length > 0) {
      findings.count++;
      if (findings.examples.length < EXAMPLES_KEPT) {
        findings.examples.push(
          `${key}: ${effective.length} loader runs handed out values (${effective.map((run) => describeRun(run, stamps.get(run))).join(', ')})` +
            (unexplained.length > 0 ? `; values from no logged run: ${unexplained.join(', ')}` : ''),
        );
      }
    }
  }
  // A strike whose clients' wrap() calls did not all return (or whose victim never held the lock) checked nothing.
  for (const fault of faults) {
    if (fault.kind !== 'kill-lock-holder' || fault.error === undefined) continue;
    findings.count++;
    if (findings.examples.length < EXAMPLES_KEPT)
      findings.examples.push(`kill-lock-holder failed: ${fault.error}`);
  }
  const summary =
    `${figures.keys} cold keys, ${figures.calls} wrap() calls (${figures.loaded} ran the loader, ` +
    `${figures.calls - figures.loaded} were served by it); ${findings.count} keys not loaded exactly once` +
    (figures.cutShortRuns > 0 ? `; ${figures.cutShortRuns} runs cut short by a failed call` : '') +
    (figures.reloadedAfterClear > 0 ? `; ${figures.reloadedAfterClear} loaded again after a clear()` : '');
  return {
    result: {
      id: 4,
      name: NAME,
      status: findings.count === 0 ? 'passed' : 'failed',
      summary,
      examples: findings.examples,
    },
    figures,
  };
}

/** A loader run: when it began, when its wrap() call returned, and what clears could have emptied its key. */
export interface RunStamp {
  loader: number;
  end: number;
  /** The clear marker's version its fill's stamp saw (undefined: not noted). */
  cleared: number | undefined;
  /** The clears its own process made during the run (only their times are read). */
  ownClears: Array<{ start: number; end: number }>;
}

/**
 * Whether every two consecutive runs (by start) are explained by a clear: one that committed between their
 * stamps, or one the first run's own process had in flight while that run was under way.
 */
export function separatedByClears(runs: RunStamp[]): boolean {
  const sorted = [...runs].sort((a, b) => a.loader - b.loader);
  for (let index = 1; index < sorted.length; index++) {
    const first = sorted[index - 1] as RunStamp;
    const second = sorted[index] as RunStamp;
    const committedBetween =
      first.cleared !== undefined && second.cleared !== undefined && second.cleared > first.cleared;
    const ownInFlight = first.ownClears.some((clear) => clear.start < first.end && clear.end > first.loader);
    if (!committedBetween && !ownInFlight) return false;
  }
  return true;
}

function describeRun(run: string, stamp: RunStamp | undefined): string {
  return stamp?.cleared === undefined ? run : `${run} (its stamp saw clear marker ${stamp.cleared})`;
}
