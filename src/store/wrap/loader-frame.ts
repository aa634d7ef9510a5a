import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';

/**
 * What a loader runs inside: the pool its fill holds a slot and a connection of. A `wrap()` in a running loader
 * on the same pool must not queue for a slot, which its own caller may hold.
 */
interface LoaderFrame {
  readonly pool: pg.Pool;
  /** False once the loader has settled: a callback it left behind (a timer, a handler) is not inside it. */
  active: boolean;
}

const frames = new AsyncLocalStorage<LoaderFrame>();

/** True when this call runs inside a loader that is still running and whose fill holds a slot of `pool`. */
export function insideLoaderOn(pool: pg.Pool): boolean {
  const frame = frames.getStore();
  return frame?.active === true && frame.pool === pool;
}

/** Runs the loader inside a frame of `pool` (which ends with it), or, without one, where the call already is. */
export async function runLoader<T>(loader: () => T | Promise<T>, pool: pg.Pool | undefined): Promise<T> {
  if (!pool) return loader();
  const frame: LoaderFrame = { pool, active: true };
  try {
    return await frames.run(frame, loader);
  } finally {
    frame.active = false;
  }
}

/** Runs `fn` outside any loader: what it starts (a background refresh) is not part of the caller's fill. */
export function outsideLoaders<T>(fn: () => T): T {
  return frames.exit(fn);
}
