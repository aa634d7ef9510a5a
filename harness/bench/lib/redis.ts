import { createConnection } from 'node:net';

/** The comparison Redis: on this machine's loopback, never anywhere else. */
export const REDIS_URL = 'redis://127.0.0.1:6379';

/** True when something accepts connections on Redis's port within a second. */
export function redisReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port: 6379 });
    const answer = (reachable: boolean) => {
      socket.destroy();
      resolve(reachable);
    };
    socket.setTimeout(1000);
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
    socket.once('timeout', () => answer(false));
  });
}
