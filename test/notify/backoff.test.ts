import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/notify/backoff.js';

// Pure arithmetic: every process that lost its LISTEN connection at the same moment (a server restart)
// asks it for its next wait.
describe('backoffDelay', () => {
  it('doubles from initialDelay up to maxDelay, and never goes past maxDelay', () => {
    const options = { initialDelay: 100, maxDelay: 1000 };
    const ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
    ceilings.forEach((ceiling, attempt) => {
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, options);
        expect(delay, `attempt ${attempt}`).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay, `attempt ${attempt}`).toBeLessThanOrEqual(ceiling);
      }
    });
    // However many attempts failed: the wait stays at most maxDelay (5000 ms by default).
    expect(backoffDelay(1000, options)).toBeLessThanOrEqual(1000);
    expect(backoffDelay(1000)).toBeLessThanOrEqual(5000);
  });

  it('spreads processes that reconnect at once: half of each wait is random', () => {
    const delays = Array.from({ length: 200 }, () => backoffDelay(2, { initialDelay: 100, maxDelay: 5000 }));
    // The third attempt: 400 ms at most, 200 ms of it fixed, the rest spread over the 200 ms above.
    expect(new Set(delays).size).toBeGreaterThan(100);
    expect(Math.min(...delays)).toBeLessThan(250);
    expect(Math.max(...delays)).toBeGreaterThan(350);
  });
});
