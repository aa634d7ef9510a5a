import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { PostgresCache } from '../../src/index.js';
import type { WorkerConfig } from './protocol.js';
import { noteTier, tapVersions } from './version-tap.js';

/** @keyv/postgres's table in the run's schema; UNLOGGED like ours, so the comparison is about the code. */
export const KEYV_POSTGRES_TABLE = 'keyv_postgres';

export interface OpenSubject {
  keyv: Keyv<string>;
  /** Set for postgres-cache: the checks inspect its L1 and listen to its events. */
  cache: PostgresCache | undefined;
  /** Errors reported in the background (not thrown by an operation). */
  backgroundErrors: () => number;
  close(): Promise<void>;
}

function createStore(config: WorkerConfig): { store: KeyvStoreAdapter; cache: PostgresCache | undefined } {
  const poolSize = config.workload.concurrency + 2;
  switch (config.subject) {
    case 'postgres-cache': {
      const cache = new PostgresCache({
        connectionString: config.url,
        listenerConnectionString: config.listenerUrl,
        schema: config.schema,
        migrate: false,
        poolSize,
        notifications: config.cache.notifications,
        l1: { max: config.cache.l1Max, ttl: config.cache.l1TtlMs },
      });
      if (config.instrumented) tapVersions(cache);
      cache.on('hit', ({ tier }) => noteTier(tier));
      return { store: cache as unknown as KeyvStoreAdapter, cache };
    }
    case '@keyv/postgres':
      return {
        store: new KeyvPostgres({
          uri: config.url,
          schema: config.schema,
          table: KEYV_POSTGRES_TABLE,
          useUnloggedTable: true,
          max: poolSize,
        }) as unknown as KeyvStoreAdapter,
        cache: undefined,
      };
    case '@keyv/redis':
      return { store: new KeyvRedis(config.redisUrl) as unknown as KeyvStoreAdapter, cache: undefined };
  }
}

/** Opens the store under test behind `new Keyv()`, as an application would use it. */
export async function openSubject(config: WorkerConfig): Promise<OpenSubject> {
  const { store, cache } = createStore(config);
  const keyv = new Keyv<string>({ store, namespace: config.namespace, throwOnErrors: true });
  let backgroundErrors = 0;
  const countError = () => {
    backgroundErrors++;
  };
  keyv.on('error', countError);
  cache?.on('error', countError);
  await cache?.init();
  return {
    keyv,
    cache,
    backgroundErrors: () => backgroundErrors,
    close: () => keyv.disconnect(),
  };
}
