import { InvalidOptionError } from '../../errors.js';

/**
 * Refuses a promise from a callback that must answer at once (a filter, a rule's keys()): what it would settle
 * to comes too late to count. Its rejection is dropped here, so that it never surfaces as unhandled.
 */
export function refusePromise(answer: unknown, what: string): void {
  if (typeof (answer as PromiseLike<unknown> | null | undefined)?.then !== 'function') return;
  Promise.resolve(answer).catch(() => undefined);
  throw new InvalidOptionError(`${what} must answer at once, not with a promise`);
}
