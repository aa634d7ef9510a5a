/** Node runs a timer of more than this many ms after 1 ms instead (with a TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
