import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../src/store/wrap/semaphore.js';

describe('Semaphore', () => {
  it('follows its limit: those queued first get the permits a larger limit frees, before anyone new', async () => {
    let limit = 1;
    const semaphore = new Semaphore(() => limit);
    const first = await semaphore.acquire();
    const granted: string[] = [];
    const queued = ['b', 'c'].map((name) =>
      semaphore.acquire().then((release) => {
        granted.push(name);
        return release;
      }),
    );
    await Promise.resolve();
    expect(granted).toEqual([]);
    limit = 3;
    const newcomer = semaphore.acquire().then((release) => {
      granted.push('d');
      return release;
    });
    await Promise.all(queued);
    expect(granted).toEqual(['b', 'c']);
    first?.();
    await newcomer;
    expect(granted).toEqual(['b', 'c', 'd']);
  });

  it('a smaller limit holds waiters back until enough permits come back', async () => {
    let limit = 2;
    const semaphore = new Semaphore(() => limit);
    const [a, b] = await Promise.all([semaphore.acquire(), semaphore.acquire()]);
    let waiting = true;
    const c = semaphore.acquire().then((release) => {
      waiting = false;
      return release;
    });
    limit = 1;
    a?.();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(waiting).toBe(true);
    b?.();
    (await c)?.();
    expect(waiting).toBe(false);
  });
});
