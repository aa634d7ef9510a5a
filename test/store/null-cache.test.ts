import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { NullCache } from '../../src/index.js';

describe('NullCache', () => {
  it('accepts every call and keeps nothing', async () => {
    const keyv = new Keyv({ store: new NullCache() });
    expect(await keyv.set('k', 'v')).toBe(true);
    expect(await keyv.get('k')).toBeUndefined();
    expect(await keyv.get(['k', 'j'])).toEqual([undefined, undefined]);
    expect(await keyv.has('k')).toBe(false);
    expect(await keyv.delete('k')).toBe(false);
    expect(await keyv.delete(['k', 'j'])).toBe(false);
    // As Keyv answers for no keys over any store, and as PostgresCache does.
    expect(await keyv.delete([])).toBe(true);
    await keyv.clear();
    await keyv.disconnect();
  });
});

describe('NullCache.wrap()', () => {
  it('starts nothing for a caller that has already given up, as PostgresCache.wrap() does', async () => {
    let runs = 0;
    const signal = AbortSignal.abort(new Error('gave up'));
    const loader = async () => {
      runs++;
      throw new Error('loader failed');
    };
    await expect(new NullCache().wrap('k', loader, { signal })).rejects.toThrow('gave up');
    expect(runs).toBe(0);
  });
});
