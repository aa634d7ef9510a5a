import { defaultDeserialize } from '@keyv/serialize';
import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { InvalidValueError } from '../../src/index.js';
import { decodeEntry, encodeEntry, parseEntry } from '../../src/store/wrap/serialization.js';

const samples: unknown[] = [
  'plain',
  ':starts with a colon',
  '::two colons',
  ':base64:not really',
  Buffer.from('bytes'),
  { nested: { colon: ':x', list: [':a', 'b', { deeper: ':c' }] } },
  { ':key': 'keys starting with a colon are left alone', 'a,': ':value after an odd key' },
  [':first', ':second'],
  'quote " and \\ and ":" inside',
  'unicode é 😀',
  0,
  -1.5,
  true,
  null,
  [],
  {},
  new Date(0),
];

/** What Keyv itself hands a store for a value: the text wrap() must be able to read. */
async function keyvText(value: unknown): Promise<string> {
  let written = '';
  const store = new Map<string, unknown>();
  const capture = {
    get: async (key: string) => store.get(key),
    set: async (key: string, text: string) => {
      written = text;
      store.set(key, text);
      return true;
    },
    delete: async (key: string) => store.delete(key),
    clear: async () => store.clear(),
  };
  await new Keyv({ store: capture }).set('k', value, 60_000);
  return written;
}

describe("Keyv's format", () => {
  it('reads what Keyv writes exactly as Keyv reads it, with or without escaped colons', async () => {
    for (const value of samples) {
      const text = await keyvText(value);
      expect(parseEntry(text)).toEqual(defaultDeserialize(text));
    }
  });

  it('writes what Keyv writes', async () => {
    for (const value of samples) {
      const text = await keyvText(value);
      const { expires } = JSON.parse(text) as { expires: number };
      expect(encodeEntry({ value, expires })).toBe(text);
    }
  });

  it('finds escaped colons in JSON written with whitespace too', () => {
    const text = JSON.stringify({ value: { a: '::x', b: [':y'] } }, null, 2);
    // As Keyv reads it: one leading colon is the escape.
    expect(parseEntry(text)?.value).toEqual({ a: ':x', b: ['y'] });
  });
});

describe('decodeEntry()', () => {
  it('is undefined for a missing, expired, valueless or foreign text', () => {
    expect(decodeEntry(undefined)).toBeUndefined();
    expect(decodeEntry('{"value":1,"expires":1000}', 2000)).toBeUndefined();
    expect(decodeEntry('{"value":1,"expires":3000}', 2000)).toEqual({ value: 1, expires: 3000 });
    expect(decodeEntry('{"expires":3000}')).toBeUndefined();
    expect(decodeEntry('not json')).toBeUndefined();
    expect(decodeEntry('"a string"')).toBeUndefined();
    expect(decodeEntry('{"value":null}')).toEqual({ value: null, expires: undefined });
  });
});

describe('encodeEntry()', () => {
  it('refuses what JSON cannot hold with InvalidValueError', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [10n, { n: 10n }, cycle, { s: Symbol('s') }]) {
      expect(() => encodeEntry({ value, expires: undefined })).toThrow(InvalidValueError);
    }
  });
});
