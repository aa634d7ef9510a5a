import { rotated } from '../bench/lib/load.js';
import { subjectFigures } from './analyze.js';
import { type LoadSettings, type RunPlace, runLoad } from './coordinator.js';
import type { SubjectName } from './protocol.js';
import { formatDuration } from './report/format.js';
import type { ComparedSubject, Comparison, SubjectFigures } from './report/model.js';
import { prepareSubject, redisReachable } from './subject-setup.js';

const GROUPS = ['all', 'read', 'write', 'delete'];

/**
 * The same workload through postgres-cache, @keyv/postgres and (when a Redis answers) @keyv/redis, one
 * after the other on the same machine, without faults or wraps (the peers have no cluster-wide wrap),
 * and without the checks' instrumentation. With several rounds the order rotates, so that a disturbance
 * of the machine does not always hit the same subject, and each subject's median round is reported.
 */
export async function runComparison(
  place: RunPlace,
  settings: LoadSettings,
  rounds: number,
): Promise<Comparison> {
  const plain: LoadSettings = {
    ...settings,
    faults: [],
    workload: { ...settings.workload, wrapShare: 0, holdShare: 0 },
    instrumented: false,
  };
  const skipped: Comparison['skipped'] = [];
  const names: SubjectName[] = ['postgres-cache', '@keyv/postgres'];
  if (await redisReachable(place.redisUrl)) names.push('@keyv/redis');
  else skipped.push({ subject: '@keyv/redis', reason: `no Redis answers at ${place.redisUrl}` });
  const measured = new Map<SubjectName, SubjectFigures[]>(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const subject of rotated(names, round)) {
      place.display.note(
        `comparison round ${round + 1}/${rounds}: ${subject}, ${plain.clients} clients for ${formatDuration(plain.durationMs)}`,
      );
      await prepareSubject(subject, place);
      measured.get(subject)?.push(subjectFigures(await runLoad(place, { ...plain, subject })));
      // The PostgreSQL subjects live in the run's schema, dropped at the end; Redis is emptied here.
      if (subject === '@keyv/redis') await prepareSubject(subject, place);
    }
  }
  const subjects = names.map((name) => medianRound(measured.get(name) ?? []));
  return {
    note:
      `the same workload without faults or wraps, ${plain.clients} clients × ${plain.workload.concurrency} in flight each, ` +
      `subjects one after another` +
      (rounds > 1 ? `, ${rounds} rounds in rotated order, each subject's median round shown` : ''),
    subjects,
    ratios: ratios(subjects),
    skipped,
  };
}

const allOpsPerSec = (figures: SubjectFigures) =>
  figures.operations.find((row) => row.group === 'all')?.opsPerSec ?? 0;

function medianRound(rounds: SubjectFigures[]): ComparedSubject {
  const sorted = [...rounds].sort((a, b) => allOpsPerSec(a) - allOpsPerSec(b));
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as SubjectFigures;
  const first = sorted[0] as SubjectFigures;
  const last = sorted[sorted.length - 1] as SubjectFigures;
  return { ...median, rounds: rounds.length, opsPerSecRange: [allOpsPerSec(first), allOpsPerSec(last)] };
}

function ratios(subjects: SubjectFigures[]): Comparison['ratios'] {
  const ours = subjects.find((subject) => subject.subject === 'postgres-cache');
  if (!ours) return [];
  const result: Comparison['ratios'] = [];
  for (const peer of subjects) {
    if (peer === ours) continue;
    for (const group of GROUPS) {
      const mine = ours.operations.find((row) => row.group === group);
      const theirs = peer.operations.find((row) => row.group === group);
      if (!mine || !theirs) continue;
      result.push({
        peer: peer.subject,
        group,
        throughput: mine.opsPerSec / theirs.opsPerSec,
        p99: mine.p99Ms / theirs.p99Ms,
      });
    }
  }
  return result;
}
