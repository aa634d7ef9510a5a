import { connect } from 'node:net';
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { schemaNames } from '../../src/adapter/names.js';
import { PostgresCache } from '../../src/index.js';
import type { HarnessDatabase } from './database.js';
import type { SubjectName } from './protocol.js';
import { KEYV_POSTGRES_TABLE } from './subjects.js';

export interface SubjectPlace {
  db: HarnessDatabase;
  schema: string;
  namespace: string;
  redisUrl: string;
}

/** Creates the subject's table, or empties it (or its Redis namespace), so that a run starts empty. */
export async function prepareSubject(subject: SubjectName, place: SubjectPlace): Promise<void> {
  switch (subject) {
    case 'postgres-cache':
      await PostgresCache.initDb({ connectionString: place.db.url, schema: place.schema });
      await place.db.admin.query(`TRUNCATE ${schemaNames(place.schema, 'pgcache_').entries}`);
      return;
    case '@keyv/postgres': {
      // Let the package create its own table, as it would for a user, before N clients race to.
      const store = new KeyvPostgres({
        uri: place.db.url,
        schema: place.schema,
        table: KEYV_POSTGRES_TABLE,
        useUnloggedTable: true,
      });
      await store.get('warm-up');
      await store.clear();
      await store.disconnect();
      return;
    }
    case '@keyv/redis': {
      const keyv = new Keyv({
        store: new KeyvRedis(place.redisUrl) as unknown as KeyvStoreAdapter,
        namespace: place.namespace,
      });
      await keyv.clear();
      await keyv.disconnect();
      return;
    }
  }
}

/** True when something answers PING with PONG at the Redis URL's host and port, within `timeoutMs`. */
export function redisReachable(url: string, timeoutMs = 500): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}
