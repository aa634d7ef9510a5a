import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { cacheFixture } from '../support/cache-fixture.js';

const { newCache: openCache } = cacheFixture('decoded_hits');
const newCache = (decodeL1Hits: boolean) => openCache({ decodeL1Hits });

// What Keyv's serializer escapes or revives (leading colons, Buffers), and what plain JSON reads the same.
const values: Array<[string, unknown]> = [
  ['a plain string', 'plain'],
  ['a string with a leading colon', ':colon'],
  ['a string with two leading colons', '::two'],
  ['a string that looks like a Buffer', ':base64:aGVsbG8='],
  ['a Buffer', Buffer.from('hello, buffer')],
  [
    'nested colons and Buffers',
    { a: { s: ':x', list: [':y', 1, null, true, Buffer.from([0, 255])] }, b: 'b' },
  ],
  ['an array', [1, 'two', ':three', [':four']]],
  ['a number', -1.5],
  ['zero', 0],
  ['false', false],
  ['null', null],
  ['unicode and escapes', 'é ✓ \u2028 "quoted" \\ \n'],
  ['an own __proto__ key', JSON.parse('{"__proto__":{"polluted":true},"ok":1}')],
  ['a Date (stored as its JSON)', new Date(0)],
];

describe('decodeL1Hits', () => {
  it.each(values)('an L1 hit through Keyv reads %s exactly as Keyv over a Map does', async (_name, value) => {
    const cache = newCache(true);
    await cache.init();
    const keyv = new Keyv({ store: cache, namespace: 'decoded' });
    const reference = new Keyv({ store: new Map(), namespace: 'decoded' });
    for (const target of [keyv, reference]) {
      await target.set('plain', value);
      await target.set('ttl', value, 60_000);
    }
    await keyv.get('plain'); // fills L1
    await keyv.get('ttl');
    const hitsBefore = cache.stats.l1.hits;

    expect(await keyv.get('plain')).toStrictEqual(await reference.get('plain'));
    const raw = await keyv.getRaw('ttl');
    const referenceRaw = await reference.getRaw('ttl');
    expect(raw?.value).toStrictEqual(referenceRaw?.value);
    expect(typeof raw?.expires).toBe('number');
    // The store handed Keyv an object, from L1.
    expect(typeof (await cache.get('decoded:plain'))).toBe('object');
    expect(cache.stats.l1.hits - hitsBefore).toBe(3);
  });

  it('gives every caller an object of its own', async () => {
    const cache = newCache(true);
    await cache.init();
    const keyv = new Keyv({ store: cache, namespace: 'own' });
    await keyv.set('user', { name: 'Ada', roles: ['reader'] });
    const first = await keyv.get<{ name: string; roles: string[] }>('user');
    const second = await keyv.get<{ name: string; roles: string[] }>('user');
    expect(first).not.toBe(second);
    first?.roles.push('admin');
    if (first) first.name = 'changed';
    expect(await keyv.get('user')).toEqual({ name: 'Ada', roles: ['reader'] });
    expect(cache.stats.l1.hits).toBeGreaterThanOrEqual(3);
  });

  it('hands Keyv what it cannot decode as text, so Keyv reads it as it would without the option', async () => {
    const decoding = newCache(true);
    const plain = newCache(false);
    await Promise.all([decoding.init(), plain.init()]);
    const viaDecoding = new Keyv({ store: decoding, namespace: 'foreign' });
    const viaPlain = new Keyv({ store: plain, namespace: 'foreign' });
    // Rows another client wrote: JSON that is not an object, and text that is not JSON.
    await plain.set('foreign:json-string', '"just a string"');
    await plain.set('foreign:not-json', 'not json');
    for (const cache of [decoding, plain]) {
      await cache.get('foreign:json-string');
      await cache.get('foreign:not-json');
    }
    expect(await decoding.get('foreign:json-string')).toBe('"just a string"');
    expect(await decoding.get('foreign:not-json')).toBe('not json');

    const outcome = (read: Promise<unknown>) =>
      read.then(
        (value) => ({ value }),
        (error: Error) => ({ error: error.name }),
      );
    expect(await outcome(viaPlain.getRaw('json-string'))).toStrictEqual({ value: 'just a string' });
    expect(await outcome(viaPlain.getRaw('not-json'))).toStrictEqual({ error: 'SyntaxError' });
    for (const key of ['json-string', 'not-json']) {
      expect(await outcome(viaDecoding.get(key))).toStrictEqual(await outcome(viaPlain.get(key)));
      expect(await outcome(viaDecoding.getRaw(key))).toStrictEqual(await outcome(viaPlain.getRaw(key)));
    }
    expect(decoding.stats.l1.hits).toBe(6);
  });

  it('is off by default: get() resolves to the stored text', async () => {
    const cache = newCache(false);
    await cache.init();
    const keyv = new Keyv({ store: cache, namespace: 'off' });
    await keyv.set('k', { a: 1 });
    await keyv.get('k');
    expect(await cache.get('off:k')).toBe('{"value":{"a":1}}');
  });
});
