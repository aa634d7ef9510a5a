import type { PostgresCacheError } from './errors.js';

/** What `reportError` needs of an emitter: its 'error' event. */
interface ErrorEmitter {
  listenerCount(event: 'error'): number;
  emit(event: 'error', error: PostgresCacheError): boolean;
}

/**
 * A background error to the emitter's 'error' handlers, when it has any (unheard, Node would throw it). A
 * handler that throws must not break the loop that reported: its error has nowhere left to go.
 */
export function reportError(emitter: ErrorEmitter, error: PostgresCacheError): void {
  if (emitter.listenerCount('error') === 0) return;
  try {
    emitter.emit('error', error);
  } catch {
    // Nowhere left to report to.
  }
}
