import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import type { HeldLock } from './advisory-lock.js';

/**
 * What a loader runs inside: the fill lock its holder took, on which pool. A `wrap()` in a loader must not
 * queue for a slot (its own caller may hold the one it would wait for); on the same pool, with a session
 * lock, it takes its key's lock on the holder's own connection, which idles while the loader runs.
 */
export interface LoaderFrame {
  readonly pool: pg.Pool;
  readonly lock: HeldLock;
  /** False once the loader has settled: a callback it left behind (a timer, a handler) is not inside it. */
  active: boolean;
  /** Fills running on the holder's connection, shared by every frame on it: the lock is freed after them. */
  readonly onConnection: Set<Promise<unknown>>;
}

const frames = new AsyncLocalStorage<LoaderFrame>();

/** The frame of the loader this call runs inside, if that loader is still running and its fill is on `pool`. */
export function loaderFrameOn(pool: pg.Pool): LoaderFrame | undefined {
  const frame = frames.getStore();
  return frame?.active && frame.pool === pool ? frame : undefined;
}

/** True inside any running loader, whatever its pool. */
export function insideALoader(): boolean {
  return frames.getStore()?.active === true;
}

export function newFrame(
  pool: pg.Pool,
  lock: HeldLock,
  onConnection = new Set<Promise<unknown>>(),
): LoaderFrame {
  return { pool, lock, active: true, onConnection };
}

/** Runs the loader inside `frame` (and the frame ends with it), or, without one, where the call already is. */
export async function runLoader<T>(loader: () => T | Promise<T>, frame: LoaderFrame | undefined): Promise<T> {
  if (!frame) return loader();
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

/** Counts a fill on the holder's connection until it settles. */
export function onHolderConnection<T>(frame: LoaderFrame, fill: Promise<T>): Promise<T> {
  frame.onConnection.add(fill);
  const forget = () => frame.onConnection.delete(fill);
  fill.then(forget, forget);
  return fill;
}

/** Resolves once no fill runs on the holder's connection (one that ends may have started another). */
export async function holderConnectionIdle(frame: LoaderFrame): Promise<void> {
  while (frame.onConnection.size > 0) await Promise.allSettled([...frame.onConnection]);
}
