export type { SchemaNames } from './names.js';
export type { PostgresAdapterOptions, ResolvedAdapterOptions } from './options.js';
export {
  type EntryToWrite,
  PostgresAdapter,
  type RemovedEntry,
  type StoredEntry,
  type TriggerState,
} from './postgres-adapter.js';
export { assertStorableKey, keyDigestHex, normalizeTtl } from './validation.js';
