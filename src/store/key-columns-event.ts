import { InvalidOptionError } from '../errors.js';
import type { TableEvent, TableRow } from '../notify/table-watch/table-event.js';

/** Read from a row without being a column: what `JSON.stringify` and `await` look for (Object's own are allowed too). */
const NOT_COLUMNS = new Set(['toJSON', 'then']);

/**
 * The event as a rule's `where`, `keys` and `tags` see it. Its rows carry the watch's key columns only: a rule
 * that reads another column gets an error (the rule then evicts everything, and reports it), not `undefined`,
 * which would name a key nothing is stored under and evict nothing, silently.
 */
export function keyColumnsEvent(event: TableEvent): TableEvent {
  const where = `${event.schema}.${event.table}`;
  return {
    ...event,
    old: event.old && keyColumnsRow(event.old, where),
    new: event.new && keyColumnsRow(event.new, where),
  };
}

/**
 * An ordinary object with the row's columns as its own properties, so that it spreads, clones and serializes
 * as the row would, whose prototype turns the read of any other name into the error (a Proxy as the row itself
 * could not be `structuredClone`d). Its prototype is not `Object.prototype`: deep-equality checks that compare
 * prototypes (`assert.deepStrictEqual`) tell it from a literal; compare a spread copy instead.
 */
function keyColumnsRow(row: TableRow, table: string): TableRow {
  const copy = Object.create(columnGuard(table)) as TableRow;
  // Defined, not assigned: assigning a column named __proto__ would set the copy's prototype instead.
  for (const [column, value] of Object.entries(row)) {
    Object.defineProperty(copy, column, { value, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

function columnGuard(table: string): object {
  // Inherits Object.prototype through its target, so `instanceof Object` and its methods hold as for any row.
  return new Proxy(Object.create(Object.prototype) as object, {
    get(target, property, receiver) {
      if (typeof property === 'symbol' || property in target || NOT_COLUMNS.has(property)) {
        return Reflect.get(target, property, receiver);
      }
      const columns = Object.keys(receiver);
      throw new InvalidOptionError(
        `a rule read column ${JSON.stringify(property)} of ${table}, whose events carry the watch's key columns only ` +
          `(${columns.length > 0 ? columns.join(', ') : 'none'}): install the watch with keyColumns that include it`,
      );
    },
  });
}
