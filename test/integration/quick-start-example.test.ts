import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { finished } from '../support/child.js';
import { adminPool, databaseUrl } from '../support/database.js';

const example = fileURLToPath(new URL('../../examples/quick-start.ts', import.meta.url));
const pool = adminPool(1);
afterAll(() => pool.end());

describe('npm run example, against a server of your own', () => {
  it('shows the L1 at work, then drops the schema it worked in', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', example], {
      env: { ...process.env, DATABASE_URL: databaseUrl() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = await finished(child, 60_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("get users:1 -> { name: 'Ava' }");
    expect(result.stdout).toContain('(loader ran 1 time)');
    // The get right after the set is an L1 hit: the start's own trigger notice did not empty L1.
    expect(result.stdout).toMatch(/stats -> \{ hits: 1,/);
    expect(result.stdout).toContain('after clear -> undefined');
    const { rows } = await pool.query(
      `SELECT 1 FROM pg_namespace WHERE nspname = 'postgres_cache_quick_start'`,
    );
    expect(rows).toEqual([]);
  });
});
