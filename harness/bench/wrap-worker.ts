/**
 * One process of the cold-key stampede of `npm run bench:wrap`, driven over IPC by harness/bench/wrap.ts.
 *
 *   argv: subject databaseUrl redisUrl
 *   in:   { cmd: 'round', key, callers, loaderMs } | { cmd: 'stop' }
 *   out:  { ready: true } once, then one RoundResult per round
 */
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import { PostgresCache } from '../../src/index.js';
import { now } from '../clock.js';
import {
  PEER_NAMESPACE,
  PEER_TABLE,
  type RoundCommand,
  type RoundResult,
  STAMPEDE_SCHEMA,
  type StampedeSubject,
} from './wrap-protocol.js';

const TTL_MS = 600_000;

type Wrap = (key: string, loader: () => Promise<unknown>) => Promise<unknown>;

async function open(
  subject: StampedeSubject,
  url: string,
  redisUrl: string,
): Promise<{ wrap: Wrap; close(): Promise<unknown> }> {
  if (subject === 'ours') {
    const cache = new PostgresCache({ connectionString: url, schema: STAMPEDE_SCHEMA, sweepInterval: 0 });
    await cache.init();
    return { wrap: (key, loader) => cache.wrap(key, loader, TTL_MS), close: () => cache.disconnect() };
  }
  const store =
    subject === 'keyv-postgres' ? new KeyvPostgres({ uri: url, table: PEER_TABLE }) : new KeyvRedis(redisUrl);
  if (store instanceof KeyvPostgres) await store.query('SELECT 1');
  const keyv = new Keyv({ store, namespace: PEER_NAMESPACE });
  const manager = createCache({ stores: [keyv] });
  return { wrap: (key, loader) => manager.wrap(key, loader, TTL_MS), close: () => manager.disconnect() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function round(wrap: Wrap, { key, callers, loaderMs }: RoundCommand): Promise<RoundResult> {
  let loads = 0;
  const loader = async () => {
    loads++;
    await sleep(loaderMs);
    return { id: 1, name: 'report', rows: [1, 2, 3], builtBy: process.pid };
  };
  const startedAt = now();
  const outcomes = await Promise.allSettled(Array.from({ length: callers }, () => wrap(key, loader)));
  const finishedAt = now();
  const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
  const firstError = (failed[0] as PromiseRejectedResult | undefined)?.reason;
  return {
    loads,
    fulfilled: outcomes.length - failed.length,
    errors: failed.length,
    firstError: firstError === undefined ? undefined : String(firstError),
    startedAt,
    finishedAt,
  };
}

const [subject, url = '', redisUrl = ''] = process.argv.slice(2) as [StampedeSubject, string, string];
const send = (message: unknown) => process.send?.(message);

if (process.send) {
  const opened = await open(subject, url, redisUrl);
  process.on('message', (message: RoundCommand | { cmd: 'stop' }) => {
    if (message.cmd === 'round') {
      void round(opened.wrap, message).then(send);
    } else {
      void opened.close().finally(() => process.disconnect());
    }
  });
  send({ ready: true });
}
