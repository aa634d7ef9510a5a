export type { TableEventFilter } from './filter.js';
export {
  installTableWatch,
  type TableUnwatchOptions,
  type TableUnwatchPlan,
  type TableWatchOptions,
  type TableWatchPlan,
  uninstallTableWatch,
} from './install.js';
export { listTableWatches, type TableWatchInfo } from './list.js';
export { tableChangeChannel, type WatchLocation } from './names.js';
export {
  greedy,
  type InvalidationStrategy,
  type StrategyRun,
  type TimedOptions,
  timed,
  type WindowedOptions,
  windowed,
} from './strategies.js';
export {
  affectsWholeTable,
  decodeTableEvent,
  eventRows,
  TABLE_OPERATIONS,
  type TableEvent,
  type TableOperation,
  type TableRow,
} from './table-event.js';
export {
  type TableSubscription,
  type TableSubscriptionOptions,
  TableWatcher,
  type TableWatcherEvents,
  type TableWatcherOptions,
  type TableWatcherStats,
} from './table-watcher.js';
