import { InvalidOptionError, quoted } from '../../errors.js';
import { refusePromise } from './synchronous.js';
import { TABLE_OPERATIONS, type TableEvent, type TableOperation } from './table-event.js';

/** Which events a subscriber wants. Every part that is given must match; an empty filter matches all. */
export interface TableEventFilter {
  /** Table name, or names, matched exactly (no schema part). */
  table?: string | readonly string[];
  /** Schema name, matched exactly. */
  schema?: string;
  operations?: readonly TableOperation[];
  /** A predicate of your own, asked last; it must answer at once (a promise counts as its failure). */
  where?: (event: TableEvent) => boolean;
}

export function compileFilter(filter: TableEventFilter): (event: TableEvent) => boolean {
  const tables = filter.table === undefined ? undefined : new Set(listOf(filter.table, 'table'));
  const { schema, where } = filter;
  if (schema !== undefined && (typeof schema !== 'string' || schema === '')) {
    throw new InvalidOptionError(`schema must be a non-empty string; got ${quoted(schema)}`);
  }
  if (where !== undefined && typeof where !== 'function')
    throw new InvalidOptionError('where must be a function');
  const operations = filter.operations === undefined ? undefined : new Set(filter.operations);
  for (const operation of operations ?? []) {
    if (!TABLE_OPERATIONS.includes(operation)) {
      throw new InvalidOptionError(
        `operations may hold ${TABLE_OPERATIONS.join(', ')}; got ${quoted(operation)}`,
      );
    }
  }
  return (event) =>
    (tables === undefined || tables.has(event.table)) &&
    (schema === undefined || schema === event.schema) &&
    (operations === undefined || operations.has(event.operation)) &&
    (where === undefined || whereMatches(where, event));
}

function whereMatches(where: (event: TableEvent) => boolean, event: TableEvent): boolean {
  const answer = where(event);
  refusePromise(answer, 'where()');
  return answer;
}

function listOf(value: string | readonly string[], what: string): string[] {
  const list = typeof value === 'string' ? [value] : [...value];
  for (const item of list) {
    if (typeof item !== 'string' || item === '') {
      throw new InvalidOptionError(`${what} must be a non-empty string; got ${quoted(item)}`);
    }
  }
  return list;
}
