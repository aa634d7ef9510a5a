import type pg from 'pg';

/**
 * Takes a client from the pool for a stretch of work. A checked-out client has no 'error' listener of
 * the pool's, so a server that ends the session (restart, pg_terminate_backend) would crash the process
 * with an unheard 'error' event. This one listens while the client is out, and a client that failed is
 * destroyed on release instead of going back to the pool.
 */
export async function checkOut(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  let failure: Error | undefined;
  const onError = (error: Error) => {
    failure = error;
  };
  client.on('error', onError);
  const release = client.release.bind(client);
  client.release = (destroy?: boolean | Error) => {
    client.off('error', onError);
    release(destroy ?? failure);
  };
  return client;
}
