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
}

/**
 * Every loader run is logged as it starts, in every client. For each cold key, the runs whose value some
 * wrap() call returned must be exactly one: more means two processes loaded the same key, none means a
 * value came from nowhere. A run whose own call failed (a fault cut it short) stored nothing; it is
 * counted apart. The kill-lock-holder victim's runs are not logged: it is killed inside them.
 */
export function checkStampede(
  logs: ClientLog[],
  wrapShare: number,
): { result: AssertionResult; figures: StampedeFigures | undefined } {
  const runs = new Map<string, Set<string>>();
  const returned = new Map<string, Set<string>>();
  const figures: StampedeFigures = { keys: 0, calls: 0, loaded: 0, effectiveRuns: 0, cutShortRuns: 0 };
  const add = (map: Map<string, Set<string>>, key: string, value: string) => {
    const set = map.get(key) ?? new Set<string>();
    set.add(value);
    map.set(key, set);
  };
  for (const log of logs) {
    for (const loader of log.loaders) add(runs, loader.key, valueId(log.index, loader.seq));
    for (const op of log.ops) {
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
    if (effective.length !== 1 || unexplained.length > 0) {
      findings.count++;
      if (findings.examples.length < EXAMPLES_KEPT) {
        findings.examples.push(
          `${key}: ${effective.length} loader runs handed out values (${effective.join(', ')})` +
            (unexplained.length > 0 ? `; values from no logged run: ${unexplained.join(', ')}` : ''),
        );
      }
    }
  }
  const summary =
    `${figures.keys} cold keys, ${figures.calls} wrap() calls (${figures.loaded} ran the loader, ` +
    `${figures.calls - figures.loaded} were served by it); ${findings.count} keys not loaded exactly once` +
    (figures.cutShortRuns > 0 ? `; ${figures.cutShortRuns} runs cut short by a failed call` : '');
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
