import {
  assertIdentifier,
  assertPrefix,
  fittedIdentifier,
  quoteIdentifier,
} from '../../adapter/identifiers.js';
import { LOCK_CLASS, lockId, schemaLock } from '../../adapter/names.js';

/** Which cache the watch belongs to: the shared trigger function lives in its schema, named with its prefix. */
export interface WatchLocation {
  /** Schema of the cache (where the trigger function is created). Default `public`. */
  cacheSchema?: string;
  /** Table prefix of the cache. Default `pgcache_`. */
  tablePrefix?: string;
}

export interface WatchNames {
  cacheSchema: string;
  tablePrefix: string;
  /** Quoted, schema-qualified name of the one trigger function every watched table shares. */
  functionName: string;
  /** The same as `to_regprocedure` reads it. */
  functionSignature: string;
  /** Unquoted names of the two triggers each watched table gets. */
  rowTrigger: string;
  truncateTrigger: string;
  /** Channel the triggers notify on unless told otherwise. */
  defaultChannel: string;
  /** Two-int advisory lock that serialises installs, in the class of the cache's migrations. */
  lock: [number, number];
  /** Taken before `lock`, as caches take it before theirs: either may be creating the cache schema. */
  schemaLock: [number, number];
}

export function watchNames({
  cacheSchema = 'public',
  tablePrefix = 'pgcache_',
}: WatchLocation = {}): WatchNames {
  assertIdentifier(cacheSchema, 'cacheSchema');
  assertPrefix(tablePrefix);
  const name = (suffix: string) => {
    const full = `${tablePrefix}${suffix}`;
    assertIdentifier(full, `table prefix ${JSON.stringify(tablePrefix)} makes a name that`);
    return full;
  };
  const functionName = `${quoteIdentifier(cacheSchema, 'cacheSchema')}.${quoteIdentifier(name('table_change'), 'name')}`;
  const defaultChannel = fittedIdentifier(`${cacheSchema}_${tablePrefix}table_changes`);
  return {
    cacheSchema,
    tablePrefix,
    functionName,
    functionSignature: `${functionName}()`,
    rowTrigger: name('watch'),
    truncateTrigger: name('watch_truncate'),
    defaultChannel,
    lock: [LOCK_CLASS.migrate, lockId(`${cacheSchema}.${tablePrefix}table_change`)],
    schemaLock: schemaLock(quoteIdentifier(cacheSchema, 'cacheSchema')),
  };
}

/**
 * The channel a watch of this cache notifies on by default: `<cacheSchema>_<tablePrefix>table_changes`, shortened
 * with a digest when that is too long for an identifier.
 */
export function tableChangeChannel(location: WatchLocation = {}): string {
  return watchNames(location).defaultChannel;
}
