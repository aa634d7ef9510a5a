import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const benches = ['adapter', 'store', 'wrap', 'table-invalidation'];

function run(bench: string, flag: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', `harness/bench/${bench}.ts`, flag], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('benchmark flags', () => {
  it.each(benches)(
    '%s prints its usage for --help, and refuses an unknown flag with it, exit code 2',
    (bench) => {
      const help = run(bench, '--help');
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(/^usage: npm run bench:\w+ -- \[options\]\n/);
      const wrong = run(bench, '--bogus');
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toMatch(/Unknown option '--bogus'/);
      expect(wrong.stderr).toMatch(/--help/);
      expect(wrong.stderr).not.toMatch(/\n\s+at /);
    },
  );
});
