import type { ClientLog } from '../collector.js';
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
 * empties the cold keys too: a key may be loaded once more after it (also when the clear came between the
 * first call's look at the key and its store, which is then refused), so two runs are allowed when a clear
 * was under way between them: it ended after the wrap() call of the first run began, and began before the
 * second run did.
 */
export function checkStampede(
  logs: ClientLog[],
  wrapShare: number,
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
  const runTimes = new Map<string, RunTimes>();
  const clears: Array<{ start: number; end: number }> = [];
  const add = (map: Map<string, Set<string>>, key: string, value: string) => {
    const set = map.get(key) ?? new Set<string>();
    set.add(value);
    map.set(key, set);
  };
  for (const log of logs) {
    for (const loader of log.loaders) {
      add(runs, loader.key, valueId(log.index, loader.seq));
      runTimes.set(valueId(log.index, loader.seq), { call: loader.start, loader: loader.start });
    }
    for (const op of log.ops) {
      // A failed clear may have been applied too.
      if (op.kind === 'clear') clears.push({ start: op.start, end: op.end });
      const times = op.seq === undefined ? undefined : runTimes.get(valueId(log.index, op.seq));
      if (op.kind === 'wrap' && times) times.call = op.start;
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
        effective.map((run) => runTimes.get(run) ?? { call: Number.NaN, loader: Number.NaN }),
        clears,
      );
    if (clearedBetween) figures.reloadedAfterClear++;
    if ((effective.length !== 1 && !clearedBetween) || unexplained.length > 0) {
      findings.count++;
      if (findings.examples.length < EXAMPLES_KEPT) {
        findings.examples.push(
          `${key}: ${effective.length} loader runs handed out values (${effective.map((run) => describeRun(run, runTimes.get(run), clears)).join(', ')})` +
            (unexplained.length > 0 ? `; values from no logged run: ${unexplained.join(', ')}` : ''),
        );
      }
    }
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

/** When a loader run began, and when the wrap() call that ran it began. */
export interface RunTimes {
  call: number;
  loader: number;
}

/** Whether every two consecutive runs (by start) had a clear under way between them. */
export function separatedByClears(runs: RunTimes[], clears: Array<{ start: number; end: number }>): boolean {
  const sorted = [...runs].sort((a, b) => a.loader - b.loader);
  for (let index = 1; index < sorted.length; index++) {
    const first = sorted[index - 1] as RunTimes;
    const second = sorted[index] as RunTimes;
    if (!clears.some((clear) => clear.end > first.call && clear.start < second.loader)) return false;
  }
  return true;
}

/** A run, with its times relative to the first clear that ended after its call began (for a finding). */
function describeRun(
  run: string,
  times: RunTimes | undefined,
  clears: Array<{ start: number; end: number }>,
): string {
  if (!times || clears.length === 0) return run;
  const clear = clears.filter((candidate) => candidate.end > times.call).sort((a, b) => a.end - b.end)[0];
  if (!clear) return `${run} (no clear after its call began)`;
  const at = (time: number) => `${(time - clear.start).toFixed(1)} ms`;
  return `${run} (call ${at(times.call)}, loader ${at(times.loader)} from the next clear's start; it took ${(clear.end - clear.start).toFixed(1)} ms)`;
}
