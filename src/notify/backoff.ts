export interface BackoffOptions {
  /** First delay, in ms. Default 100. */
  initialDelay?: number;
  /** Largest delay, in ms. Default 5000. */
  maxDelay?: number;
}

/** Exponential backoff with "equal jitter": half the delay is fixed, half random, so reconnecting processes spread out. */
export function backoffDelay(
  attempt: number,
  { initialDelay = 100, maxDelay = 5000 }: BackoffOptions = {},
): number {
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
