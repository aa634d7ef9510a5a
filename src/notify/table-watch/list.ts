import { toCacheError } from '../../errors.js';
import { type Queryable, readWatchTriggers } from './catalog.js';
import { type WatchLocation, watchNames } from './names.js';
import type { TableOperation } from './table-event.js';

export interface TableWatchInfo {
  schema: string;
  table: string;
  channel: string;
  keyColumns: string[];
  /** Operations a trigger is in place (and enabled) for. */
  operations: TableOperation[];
}

/** pg_trigger.tgtype bits (see PostgreSQL's trigger.h). */
const TYPE_BITS: Array<[number, TableOperation]> = [
  [1 << 2, 'insert'],
  [1 << 4, 'update'],
  [1 << 3, 'delete'],
  [1 << 5, 'truncate'],
];

/** The tables this cache watches, read from pg_trigger: the database is the only record. */
export async function listTableWatches(
  db: Queryable,
  location: WatchLocation = {},
): Promise<TableWatchInfo[]> {
  const n = watchNames(location);
  let triggers: Awaited<ReturnType<typeof readWatchTriggers>>;
  try {
    triggers = await readWatchTriggers(db, n);
  } catch (error) {
    throw toCacheError(error, 'listing table watches');
  }
  const byTable = new Map<string, TableWatchInfo>();
  for (const trigger of triggers) {
    const id = JSON.stringify([trigger.schema, trigger.table]);
    let info = byTable.get(id);
    if (!info) {
      info = { schema: trigger.schema, table: trigger.table, channel: '', keyColumns: [], operations: [] };
      byTable.set(id, info);
    }
    const [channel = '', ...keyColumns] = trigger.args;
    if (trigger.name === n.rowTrigger || !info.channel) info.channel = channel;
    if (trigger.name === n.rowTrigger) info.keyColumns = keyColumns;
    if (!trigger.enabled) continue;
    for (const [bit, operation] of TYPE_BITS) {
      if (trigger.type & bit && !info.operations.includes(operation)) info.operations.push(operation);
    }
  }
  for (const info of byTable.values()) {
    info.operations.sort((a, b) => order(a) - order(b));
  }
  return [...byTable.values()];
}

function order(operation: TableOperation): number {
  return TYPE_BITS.findIndex(([, candidate]) => candidate === operation);
}
