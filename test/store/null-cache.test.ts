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
    await keyv.clear();
    await keyv.disconnect();
  });
});
