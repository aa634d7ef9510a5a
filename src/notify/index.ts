export { type BackoffOptions, backoffDelay } from './backoff.js';
export {
  type CacheChange,
  decodeCacheChange,
  decodeChannelMessage,
  type RepointNotice,
} from './change-event.js';
export {
  type ListenerEvents,
  type ListenerOptions,
  type NotificationHandler,
  PgListener,
} from './listener.js';
export { type ListenerLease, leaseListener } from './shared-listener.js';
export * from './table-watch/index.js';
