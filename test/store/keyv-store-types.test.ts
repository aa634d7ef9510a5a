import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { describe, expect, it } from 'vitest';
import { NullCache, PostgresAdapter } from '../../src/index.js';
import { cacheFixture } from '../support/cache-fixture.js';
import { databaseUrl } from '../support/database.js';

// Each store is handed to Keyv the way its README shows, `new Keyv(store)`, and typed as Keyv's own
// store type: the CI type-check fails here if a signature stops matching what Keyv declares.
const { schema, newCache } = cacheFixture('keyv_types');

describe('the stores as Keyv sees them', () => {
  it('PostgresCache: new Keyv(cache) reads and writes, and setMany() answers with a boolean per entry', async () => {
    const cache = newCache();
    const asKeyvStore: KeyvStoreAdapter = cache;
    const keyv = new Keyv<{ name: string }>(cache, { namespace: 'types' });
    expect(keyv.store).toBe(asKeyvStore);
    expect(
      await keyv.setMany([
        { key: 'a', value: { name: 'A' } },
        { key: 'b', value: { name: 'B' } },
      ]),
    ).toEqual([true, true]);
    const a = await keyv.get('a');
    const name: string | undefined = a?.name;
    expect(name).toBe('A');
    expect(await keyv.getMany(['a', 'b', 'c'])).toEqual([{ name: 'A' }, { name: 'B' }, undefined]);
  });

  it('PostgresAdapter: new Keyv(adapter) reads and writes, and setMany() answers with a boolean per entry', async () => {
    const adapter = new PostgresAdapter({ connectionString: databaseUrl(), schema, sweepInterval: 0 });
    try {
      const asKeyvStore: KeyvStoreAdapter = adapter;
      const keyv = new Keyv<number>(adapter, { namespace: 'types' });
      expect(keyv.store).toBe(asKeyvStore);
      expect(await keyv.setMany([{ key: 'one', value: 1 }])).toEqual([true]);
      expect(await keyv.getMany(['one', 'two'])).toEqual([1, undefined]);
    } finally {
      await adapter.disconnect();
    }
  });

  it('NullCache: new Keyv(cache) stores nothing, and setMany() still answers per entry', async () => {
    const nothing = new NullCache();
    const asKeyvStore: KeyvStoreAdapter = nothing;
    const keyv = new Keyv<string>(nothing);
    expect(keyv.store).toBe(asKeyvStore);
    expect(await keyv.setMany([{ key: 'x', value: 'y' }])).toEqual([true]);
    expect(await keyv.get('x')).toBeUndefined();
  });
});
