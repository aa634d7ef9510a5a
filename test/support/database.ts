import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export const databaseUrl = (): string => inject('databaseUrl');

/** The test database's URL, with REPEATABLE READ as its sessions' default isolation. */
export function repeatableReadUrl(): string {
  const url = new URL(databaseUrl());
  url.searchParams.set('options', '-c default_transaction_isolation=repeatable\\ read');
  return url.toString();
}

/** A schema of the test file's own, so test files never see each other's tables. */
export function uniqueSchema(label: string): string {
  return `t_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
}

export function adminPool(max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max, allowExitOnIdle: true });
  pool.on('error', () => undefined);
  return pool;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The outcome of a promise: 'resolved', the error it rejected with, or 'pending' if it has none after `ms`. */
export async function outcomeWithin(promise: Promise<unknown>, ms: number): Promise<unknown> {
  const pending = new Promise((resolve) => setTimeout(() => resolve('pending'), ms).unref());
  return Promise.race([
    promise.then(
      () => 'resolved',
      (error: unknown) => error,
    ),
    pending,
  ]);
}

/**
 * Polls until `check` returns true or the time is up (a generous default: it returns as soon as it holds);
 * returns the last answer. A check that throws counts as not yet; if it threw last, that error is thrown.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 10) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: { error: unknown } | undefined;
    try {
      if (await check()) return true;
    } catch (error) {
      failure = { error };
    }
    if (Date.now() > deadline) {
      if (failure) throw failure.error;
      return false;
    }
    await sleep(stepMs);
  }
}
