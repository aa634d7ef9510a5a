import pg from 'pg';
import { installTableWatch, uninstallTableWatch } from '../notify/table-watch/install.js';
import { listTableWatches } from '../notify/table-watch/list.js';
import { assertName } from '../notify/table-watch/quote.js';
import { UsageError, type WatchArgs } from './args.js';

/** A server that does not answer (a dropped route, a stalled proxy) fails the command instead of hanging it. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface Output {
  out(text: string): void;
}

export async function runWatch(args: WatchArgs, output: Output): Promise<void> {
  if (!args.url) throw new UsageError('no database: give --url or set DATABASE_URL');
  // Every name first: a bad one among several tables must stop the command before it changes any of them.
  for (const { schema, table } of args.tables) {
    assertName(schema, 'schema');
    assertName(table, 'table');
  }
  const pool = new pg.Pool({
    connectionString: args.url,
    max: 1,
    application_name: 'postgres-cache cli',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  pool.on('error', () => undefined);
  const location = { cacheSchema: args.cacheSchema, tablePrefix: args.tablePrefix };
  try {
    if (args.action === 'list') {
      const watches = await listTableWatches(pool, location);
      output.out(args.json ? `${JSON.stringify(watches, null, 2)}\n` : formatList(watches));
      return;
    }
    // Every table planned first, changing nothing: one that does not exist, or that cannot be watched as
    // asked, stops the command before it changes any of the others. (A privilege missing on one is found
    // only by applying: the tables before it are then changed.)
    if (args.apply) await planEach(pool, args, location);
    for (const { schema, table } of args.tables) {
      const name = `${JSON.stringify(schema)}.${JSON.stringify(table)}`;
      if (args.action === 'install') {
        const plan = await installTableWatch(pool, {
          ...location,
          schema,
          table,
          keyColumns: args.keyColumns,
          channel: args.channel,
          lockTimeout: args.lockTimeout,
          dryRun: !args.apply,
        });
        const keys = plan.keyColumns.length ? plan.keyColumns.join(', ') : 'none';
        output.out(`-- watch ${name}: key ${keys}; channel ${plan.channel}\n${plan.sql}`);
        output.out(
          `${outcome(args.apply, plan.applied, plan.upToDate ? 'already watched like this' : undefined)}\n`,
        );
      } else {
        const plan = await uninstallTableWatch(pool, {
          ...location,
          schema,
          table,
          lockTimeout: args.lockTimeout,
          dryRun: !args.apply,
        });
        output.out(`-- unwatch ${name}\n${plan.sql}`);
        output.out(`${outcome(args.apply, plan.applied, plan.wasWatched ? undefined : 'not watched')}\n`);
      }
    }
  } finally {
    await pool.end();
  }
}

async function planEach(
  pool: pg.Pool,
  args: WatchArgs,
  location: { cacheSchema: string | undefined; tablePrefix: string | undefined },
): Promise<void> {
  for (const { schema, table } of args.tables) {
    const target = { ...location, schema, table, lockTimeout: args.lockTimeout, dryRun: true };
    if (args.action === 'install') {
      await installTableWatch(pool, { ...target, keyColumns: args.keyColumns, channel: args.channel });
    } else {
      await uninstallTableWatch(pool, target);
    }
  }
}

function outcome(apply: boolean, applied: boolean, nothingToDo: string | undefined): string {
  if (nothingToDo) return `-- ${nothingToDo}: nothing to change`;
  if (!apply) return '-- dry run: nothing was changed; add --apply to run it';
  return applied ? '-- applied' : '-- not applied';
}

function formatList(watches: Awaited<ReturnType<typeof listTableWatches>>): string {
  if (watches.length === 0) return 'no tables are watched\n';
  return watches
    .map(
      (watch) =>
        `${JSON.stringify(watch.schema)}.${JSON.stringify(watch.table)}  key: ${watch.keyColumns.join(', ') || 'none'}  channel: ${watch.channel}  on: ${watch.operations.join(', ')}\n`,
    )
    .join('');
}
