import { execFileSync } from 'node:child_process';

/**
 * The code a benchmark measured: the commit, and whether the given paths had uncommitted changes
 * (figures are only comparable for the same code). Undefined outside a git work tree.
 */
export function describeRevision(paths: string[] = ['src']): string | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', ...paths);
    return dirty ? `${commit} + uncommitted changes in ${paths.join(', ')}` : commit;
  } catch {
    return undefined;
  }
}
