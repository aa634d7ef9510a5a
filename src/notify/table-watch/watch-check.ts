/** `pg_trigger.tgtype` bits: a row trigger on INSERT, DELETE and UPDATE (1 | 4 | 8 | 16), and one on TRUNCATE. */
const ROW_WRITES = 29;
const TRUNCATE = 32;

/** Runs one catalog query: a pool, or a cache's adapter (its connection slots and deadline). */
export type CatalogQuery = (text: string, values: unknown[]) => Promise<unknown[]>;

interface TableWatchRow {
  schema: string;
  table: string;
  /** Both triggers of a watch on the channel are there and enabled: the row trigger and the TRUNCATE one. */
  watched: boolean;
  /** Some trigger on the table notifies the channel, enabled or not. */
  onChannel: boolean;
  /** Watched, but some trigger notifying the channel fires only in ordinary sessions (not ENABLE ALWAYS). */
  notAlways: boolean;
  /** Channels that watch triggers of any cache location (`…table_change` functions) on it notify. */
  channels: string[];
  /** Tables that inherit from it: a change to their rows fires their triggers, not its own. */
  inheritors: string[];
}

/**
 * What keeps events of a table from reaching a subscriber on `channel`: `silent` when none can (the table is
 * missing, or not watched on the channel), `partial` when some changes send none (writes to tables that
 * inherit from it, or from replica sessions).
 */
export interface WatchProblem {
  table: string;
  kind: 'silent' | 'partial';
  reason: string;
}

/**
 * Why events of these tables would not all reach a subscriber on `channel`, one sentence per table; empty
 * when each is watched on it. A table of that name in any schema (or in `schema`) counts.
 */
export async function whyNotWatched(
  query: CatalogQuery,
  tables: readonly string[],
  schema: string | undefined,
  channel: string,
): Promise<WatchProblem[]> {
  const rows = (await query(
    `SELECT n.nspname AS schema, c.relname AS table,
            EXISTS (SELECT 1 FROM pg_trigger t
                     WHERE t.tgrelid = c.oid AND t.tgenabled IN ('O', 'A') AND t.tgtype & ${ROW_WRITES} = ${ROW_WRITES}
                       AND split_part(encode(t.tgargs, 'escape'), E'\\\\000', 1) = $3)
            AND EXISTS (SELECT 1 FROM pg_trigger t
                     WHERE t.tgrelid = c.oid AND t.tgenabled IN ('O', 'A') AND t.tgtype & ${TRUNCATE} = ${TRUNCATE}
                       AND split_part(encode(t.tgargs, 'escape'), E'\\\\000', 1) = $3) AS watched,
            EXISTS (SELECT 1 FROM pg_trigger t
                     WHERE t.tgrelid = c.oid
                       AND split_part(encode(t.tgargs, 'escape'), E'\\\\000', 1) = $3) AS "onChannel",
            EXISTS (SELECT 1 FROM pg_trigger t
                     WHERE t.tgrelid = c.oid AND t.tgenabled = 'O'
                       AND split_part(encode(t.tgargs, 'escape'), E'\\\\000', 1) = $3) AS "notAlways",
            ARRAY(SELECT DISTINCT split_part(encode(t.tgargs, 'escape'), E'\\\\000', 1)
                    FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                   WHERE t.tgrelid = c.oid AND p.proname LIKE '%table\\_change') AS channels,
            ARRAY(SELECT k.relname::text FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
                   WHERE i.inhparent = c.oid ORDER BY 1) AS inheritors
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND ($2::text IS NULL OR n.nspname = $2)`,
    [tables, schema ?? null, channel],
  )) as TableWatchRow[];
  const problems: WatchProblem[] = [];
  for (const table of tables) {
    const found = rows.filter((row) => row.table === table);
    const name =
      schema === undefined ? JSON.stringify(table) : `${JSON.stringify(schema)}.${JSON.stringify(table)}`;
    if (found.length === 0) {
      problems.push({
        table,
        kind: 'silent',
        reason: `table ${name} does not exist: the rule on it will never evict anything`,
      });
    } else if (!found.some((row) => row.watched)) {
      const elsewhere = [...new Set(found.flatMap((row) => row.channels))].filter(
        (other) => other !== channel,
      );
      problems.push({
        table,
        kind: 'silent',
        reason:
          `table ${name} sends no events to ${JSON.stringify(channel)}, the channel this rule listens on: ` +
          (found.some((row) => row.onChannel)
            ? 'its watch on that channel is disabled or incomplete (a trigger of it dropped or disabled); install it again'
            : elsewhere.length > 0
              ? `its watch notifies ${elsewhere.map((other) => JSON.stringify(other)).join(', ')} (install it with the cache's schema and prefix as cacheSchema and tablePrefix)`
              : 'it is not watched (installTableWatch, or `postgres-cache watch install`)'),
      });
    } else if (found.some((row) => row.inheritors.some((child) => !tables.includes(child)))) {
      const children = [...new Set(found.flatMap((row) => row.inheritors))].filter(
        (child) => !tables.includes(child),
      );
      problems.push({
        table,
        kind: 'partial',
        reason:
          `table ${name} has tables that inherit from it (${children.map((child) => JSON.stringify(child)).join(', ')}): ` +
          'a change to their rows fires their triggers, not its own; watch them and name them in the rule',
      });
    } else if (found.every((row) => !row.watched || row.notAlways)) {
      problems.push({
        table,
        kind: 'partial',
        reason:
          `table ${name} is watched, but not ENABLE ALWAYS: writes from sessions with session_replication_role = replica ` +
          '(bulk loads, restores, logical replication) send no events; install its watch again',
      });
    }
  }
  return problems;
}
