import { parsePayloadObject } from '../json-payload.js';

export type TableOperation = 'insert' | 'update' | 'delete' | 'truncate';

export const TABLE_OPERATIONS: readonly TableOperation[] = ['insert', 'update', 'delete', 'truncate'];

/** The key columns of one row version (the primary key unless the watch was told otherwise). */
export type TableRow = Readonly<Record<string, unknown>>;

/**
 * A change to a watched table. Key values are JSON: numbers for integers up to 15 digits, strings for
 * bigger or fractional numbers (exact), and whatever `to_jsonb` makes of other types.
 */
export interface TableEvent {
  schema: string;
  table: string;
  operation: TableOperation;
  /** The row's keys before the change (update, delete). */
  old?: TableRow | undefined;
  /** The row's keys after the change (insert, update). */
  new?: TableRow | undefined;
  /** The keys did not fit in a notification: treat every row of the table as changed. */
  overflow: boolean;
}

/** True when the event cannot name the rows it changed: a truncate, or keys too big to send. */
export function affectsWholeTable(event: TableEvent): boolean {
  return event.operation === 'truncate' || event.overflow;
}

/**
 * The row versions an event names: insert its new row, delete its old row, update both (a key
 * change must evict what the old key and the new key stood for), or one when the keys are unchanged.
 */
export function eventRows(event: TableEvent): TableRow[] {
  const rows = [event.old, event.new].filter((row): row is TableRow => row !== undefined);
  if (rows.length === 2 && JSON.stringify(rows[0]) === JSON.stringify(rows[1])) return [rows[0] as TableRow];
  return rows;
}

const isRow = (value: unknown): value is TableRow =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isName = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/**
 * Reads a payload of the watch trigger. Anyone may NOTIFY any channel, so whatever is not exactly
 * one of our events yields undefined, never an exception.
 */
export function decodeTableEvent(payload: string | undefined): TableEvent | undefined {
  const data = parsePayloadObject(payload);
  if (!data) return undefined;
  const { schema, table, op } = data;
  if (!isName(schema) || !isName(table) || !TABLE_OPERATIONS.includes(op as TableOperation)) return undefined;
  const operation = op as TableOperation;
  if (data.overflow === true || operation === 'truncate') {
    return { schema, table, operation, overflow: operation !== 'truncate' };
  }
  const wantsOld = operation !== 'insert';
  const wantsNew = operation !== 'delete';
  if (wantsOld !== isRow(data.old) || wantsNew !== isRow(data.new)) return undefined;
  return {
    schema,
    table,
    operation,
    old: wantsOld ? (data.old as TableRow) : undefined,
    new: wantsNew ? (data.new as TableRow) : undefined,
    overflow: false,
  };
}
