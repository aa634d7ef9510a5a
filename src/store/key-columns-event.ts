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

function keyColumnsRow(row: TableRow, table: string): TableRow {
  return new Proxy(row, {
    get(target, property, receiver) {
      if (typeof property === 'symbol' || property in target || NOT_COLUMNS.has(property)) {
        return Reflect.get(target, property, receiver);
      }
      const columns = Object.keys(target);
      throw new InvalidOptionError(
        `a rule read column ${JSON.stringify(property)} of ${table}, whose events carry the watch's key columns only ` +
          `(${columns.length > 0 ? columns.join(', ') : 'none'}): install the watch with keyColumns that include it`,
      );
    },
  });
}
