import { afterAll, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  PostgresCache,
  type PostgresCacheOptions,
  TableWatcher,
} from '../../src/index.js';
import { databaseUrl, dropSchema, uniqueSchema } from '../support/database.js';

// Each of these was once taken as given: a NaN L1 ttl kept entries forever, a heartbeat of 0 ran
// `SELECT 1` about every millisecond on the connection all caches of the process share.
const refused: Array<[string, PostgresCacheOptions, RegExp]> = [
  ['a NaN L1 ttl', { l1: { ttl: Number.NaN } }, /l1\.ttl must be a positive number/],
  ['an L1 ttl of 0', { l1: { ttl: 0 } }, /l1\.ttl/],
  ['an Infinity L1 ttl', { l1: { ttl: Number.POSITIVE_INFINITY } }, /l1\.ttl/],
  ['a fractional L1 max', { l1: { max: 1.5 } }, /l1\.max must be a non-negative integer/],
  ['a negative L1 max', { l1: { max: -1 } }, /l1\.max/],
  ['an L1 maxBytes of 0', { l1: { maxBytes: 0 } }, /l1\.maxBytes must be a positive integer/],
  ['l1 as a number', { l1: 5 as unknown as false }, /l1 must be false or an object/],
  ['a heartbeat of 0', { heartbeatInterval: 0 }, /heartbeatInterval must be a number of ms from 1/],
  ['a negative heartbeat', { heartbeatInterval: -1 }, /heartbeatInterval/],
  ['a NaN heartbeat', { heartbeatInterval: Number.NaN }, /heartbeatInterval/],
  ['a heartbeat past what a timer holds', { heartbeatInterval: 2 ** 31 }, /heartbeatInterval/],
  ['a heartbeat timeout of 0', { heartbeatTimeout: 0 }, /heartbeatTimeout/],
  ['a negative reconnect delay', { reconnect: { initialDelay: -1 } }, /reconnect\.initialDelay/],
  ['a NaN reconnect ceiling', { reconnect: { maxDelay: Number.NaN } }, /reconnect\.maxDelay/],
  [
    'an unknown lock mode',
    { wrap: { lockMode: 'bogus' as 'session' } },
    /lockMode must be 'session' or 'transaction'/,
  ],
  ['an unknown lock timeout action', { wrap: { onLockTimeout: 'bogus' as 'load' } }, /onLockTimeout/],
  ['a negative lock timeout', { wrap: { lockTimeout: -5 } }, /lockTimeout must be a non-negative/],
  ['a lock timeout past what a timer holds', { wrap: { lockTimeout: 3e9 } }, /lockTimeout .* at most/],
  ['a NaN poll interval', { wrap: { maxPollInterval: Number.NaN } }, /maxPollInterval/],
  ['a lock timeout given as text', { wrap: { lockTimeout: '5' as unknown as number } }, /lockTimeout/],
  // Past what a Node timer holds, every statement's deadline would have fired after 1 ms.
  [
    'a statement timeout past what a timer holds',
    { statementTimeout: 3e9 },
    /statementTimeout must be at most/,
  ],
  [
    'a connection timeout past what a timer holds',
    { connectionTimeout: 2 ** 31 },
    /connectionTimeout must be at most/,
  ],
  ['a negative trigger check interval', { triggerCheckInterval: -1 }, /triggerCheckInterval must be 0 or/],
  ['a fractional trigger check interval', { triggerCheckInterval: 0.5 }, /triggerCheckInterval/],
  // A string 'false' is truthy: taken as given, it would have meant the opposite.
  [
    'notifications as text',
    { notifications: 'false' as unknown as boolean },
    /notifications must be true or false/,
  ],
  [
    'decodeL1Hits as a number',
    { decodeL1Hits: 1 as unknown as boolean },
    /decodeL1Hits must be true or false/,
  ],
  ['migrate as text', { migrate: 'false' as unknown as boolean }, /migrate must be true or false/],
  // Options that cannot even be turned into text: the message must still be made.
  ['an L1 ttl without a prototype', { l1: { ttl: Object.create(null) } }, /l1\.ttl/],
  [
    'a heartbeat that is a Symbol',
    { heartbeatInterval: Symbol('x') as unknown as number },
    /heartbeatInterval/,
  ],
  ['a wrap ttl that is a Symbol', { wrap: { lockTimeout: Symbol('x') as unknown as number } }, /lockTimeout/],
];

const schema = uniqueSchema('options');
afterAll(() => dropSchema(schema));

describe('PostgresCache options', () => {
  it.each(refused)('refuses %s when it is made, with an InvalidOptionError', (_, options, message) => {
    const make = () => new PostgresCache({ connectionString: databaseUrl(), ...options });
    expect(make).toThrow(InvalidOptionError);
    expect(make).toThrow(message);
  });

  it('takes the edges of each range', async () => {
    const cache = new PostgresCache({
      connectionString: databaseUrl(),
      l1: { max: 0, maxBytes: 1, ttl: 0.5 },
      heartbeatInterval: 1,
      triggerCheckInterval: 0,
      heartbeatTimeout: 2 ** 31 - 1,
      reconnect: { initialDelay: 1, maxDelay: 1 },
      wrap: { lockTimeout: 0, lockMode: 'transaction', onLockTimeout: 'throw' },
      notifications: false,
    });
    expect(cache.options.l1).toEqual({ max: 0, maxBytes: 1, ttl: 0.5 });
    await cache.disconnect();
  });

  it('takes l1: true and l1: null, from JavaScript, as the defaults', async () => {
    for (const l1 of [true, null]) {
      const cache = new PostgresCache({
        connectionString: databaseUrl(),
        schema,
        sweepInterval: 0,
        l1: l1 as unknown as false,
      });
      try {
        await cache.init();
        cache.namespace = 'l1-defaults';
        await cache.set('k', 'v');
        expect(await cache.get('k')).toBe('v');
        expect(cache.stats.l1.hits).toBe(1);
      } finally {
        await cache.disconnect();
      }
    }
  });

  it('a table watcher refuses the same listener timings', () => {
    const make = () => new TableWatcher({ connection: databaseUrl(), heartbeatInterval: Number.NaN });
    expect(make).toThrow(InvalidOptionError);
    expect(make).toThrow(/heartbeatInterval/);
  });
});
