/**
 * What a watch costs the application's writer: a 500-row UPDATE of a column that is not a key, timed
 * without and with the watch triggers, on narrow rows and on rows with a 96 KB TOASTed text column
 * (the trigger converts each row version to find its key columns, and a wide row's conversion reads
 * its TOASTed columns back). The median of 7 runs of each.
 */
import type pg from 'pg';
import { installTableWatch, uninstallTableWatch } from '../../src/index.js';
import { now } from '../clock.js';
import { percentile } from './lib/latency.js';

const ROWS = 500;
const RUNS = 7;

export interface WriterCost {
  rows: string;
  unwatchedMs: number;
  watchedMs: number;
  ratio: number;
}

const TABLES = [
  { table: 'narrow_rows', rows: 'narrow rows', body: `'short'` },
  // md5 text does not compress: 96 000 bytes stored out of line, in TOAST.
  {
    table: 'wide_rows',
    rows: 'rows with a 96 KB column',
    body: `(SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 3000) i)`,
  },
];

export async function measureWriterCost(writer: pg.Client, schema: string): Promise<WriterCost[]> {
  const results: WriterCost[] = [];
  for (const { table, rows, body } of TABLES) {
    const qualified = `"${schema}"."${table}"`;
    await writer.query(`CREATE TABLE ${qualified} (id int PRIMARY KEY, n int NOT NULL, body text NOT NULL)`);
    await writer.query(`INSERT INTO ${qualified} SELECT g, 0, ${body} FROM generate_series(1, ${ROWS}) g`);
    const median = async () => {
      const runs: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const started = now();
        await writer.query(`UPDATE ${qualified} SET n = n + 1`);
        runs.push(now() - started);
      }
      return percentile(
        runs.sort((a, b) => a - b),
        0.5,
      );
    };
    const unwatchedMs = await median();
    await installTableWatch(writer, { schema, table, cacheSchema: schema });
    const watchedMs = await median();
    await uninstallTableWatch(writer, { schema, table, cacheSchema: schema });
    results.push({ rows, unwatchedMs, watchedMs, ratio: watchedMs / unwatchedMs });
  }
  return results;
}

export function formatWriterCost(results: WriterCost[]): string {
  return results
    .map(
      (result) =>
        `${ROWS}-row UPDATE, ${result.rows}`.padEnd(42) +
        ` unwatched ${result.unwatchedMs.toFixed(1).padStart(7)} ms   watched ${result.watchedMs.toFixed(1).padStart(7)} ms   ${result.ratio.toFixed(1)}x\n`,
    )
    .join('');
}
