// An HTTP service whose GET /users/:id is cached in PostgresCache and dropped, in every instance of
// the service, the moment the user's row changes, whoever changes it (this service, a migration, psql).
import Fastify, { type FastifyInstance } from 'fastify';
import type pg from 'pg';
import { cached, type PostgresCache } from '../../src/index.js';

export interface User {
  id: number;
  name: string;
  email: string;
}

export interface AppOptions {
  cache: PostgresCache;
  /** Where the application's own tables are. */
  db: pg.Pool;
  /** Schema of the users table. Default `public`. */
  schema?: string;
}

export function buildApp({ cache, db, schema = 'public' }: AppOptions): FastifyInstance {
  const users = `"${schema}".users`;
  const getUser = cached(
    async (id: number): Promise<User | null> => {
      const { rows } = await db.query<User>(`SELECT id, name, email FROM ${users} WHERE id = $1`, [id]);
      return rows[0] ?? null;
    },
    {
      cache,
      name: 'getUser',
      key: (id) => String(id),
      // A TTL as well: a backstop for changes made while no instance at all was listening.
      ttl: 10 * 60_000,
      invalidateOn: { table: 'users', schema, keys: (row) => [String(row.id)] },
    },
  );

  const app = Fastify();
  app.get<{ Params: { id: number } }>(
    '/users/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } } },
    async (request, reply) => {
      const user = await getUser(request.params.id);
      if (!user) return reply.code(404).send({ error: 'no such user' });
      return user;
    },
  );
  // How often the loader ran, how often the cache answered: to watch the invalidation happen.
  app.get('/stats', async () => getUser.stats);
  app.addHook('onReady', async () => {
    await getUser.ready;
  });
  app.addHook('onClose', async () => {
    await getUser.close();
  });
  return app;
}
