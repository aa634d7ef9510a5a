// One process of a cold-key stampede: CALLERS concurrent wrap() calls on one key, started together with
// the other processes (they all wait on a shared advisory lock the test holds until every one is ready).
// Every loader run is recorded in <schema>.wrap_runs. Prints one JSON line with what each caller got.
//
//   argv: schema key behaviour lockMode startLock
//   behaviour: ok | throw | hang-first (the first run in the cluster hangs until the test kills it)
import pg from 'pg';
import { PostgresCache } from '../../../src/index.js';

const [schema = '', key = 'cold', behaviour = 'ok', lockMode = 'session', startLock = '0'] =
  process.argv.slice(2);
const CALLERS = 50;
/** The test holds this lock until every process is ready, then lets go: the start signal. */
const START_LOCK = Number(startLock);

const cache = new PostgresCache({
  schema,
  sweepInterval: 0,
  namespace: 'stampede',
  wrap: { lockMode: lockMode as 'session' | 'transaction', lockTimeout: 20_000, onLockTimeout: 'throw' },
});
const side = new pg.Client({ connectionString: process.env.DATABASE_URL });
await side.connect();
await cache.init();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function loader() {
  const { rows } = await side.query<{ id: number }>(
    `INSERT INTO "${schema}".wrap_runs (pid) VALUES ($1) RETURNING id`,
    [process.pid],
  );
  const run = rows[0]?.id ?? 0;
  if (behaviour === 'hang-first' && run === 1) {
    process.stdout.write('hanging\n');
    await sleep(120_000);
  }
  await sleep(200);
  if (behaviour === 'throw') throw new Error(`loader failed in ${process.pid}`);
  return { run, pid: process.pid };
}

process.stdout.write('ready\n');
await side.query('SELECT pg_advisory_lock_shared($1)', [START_LOCK]);
await side.query('SELECT pg_advisory_unlock_shared($1)', [START_LOCK]);

const outcomes = await Promise.allSettled(Array.from({ length: CALLERS }, () => cache.wrap(key, loader)));
const values = outcomes.flatMap((outcome) =>
  outcome.status === 'fulfilled' ? [JSON.stringify(outcome.value)] : [],
);
const errors = outcomes.flatMap((outcome) =>
  outcome.status === 'rejected' ? [`${outcome.reason?.name}: ${outcome.reason?.message}`] : [],
);
process.stdout.write(
  `${JSON.stringify({ pid: process.pid, fulfilled: values.length, values: [...new Set(values)], errors: [...new Set(errors)], rejected: errors.length })}\n`,
);
await side.end();
await cache.disconnect();
