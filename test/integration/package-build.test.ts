import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The built package as users load it (`npm install` builds it; CI builds before testing).
const require = createRequire(import.meta.url);
const entries = ['index', 'cache-manager', 'nestjs'] as const;

describe('the built package', () => {
  it.each(entries)('dist/%s: CommonJS and ESM export the same names', async (entry) => {
    const commonJs = require(`../../dist/${entry}.cjs`) as Record<string, unknown>;
    const esm = (await import(`../../dist/${entry}.js`)) as Record<string, unknown>;
    expect(Object.keys(commonJs).sort()).toEqual(Object.keys(esm).sort());
    expect(Object.keys(esm).length).toBeGreaterThan(0);
  });

  it('keeps the classes their names in both builds (stack traces, console.log)', async () => {
    const commonJs = require('../../dist/index.cjs') as Record<string, unknown>;
    const esm = (await import('../../dist/index.js')) as Record<string, unknown>;
    for (const exports of [commonJs, esm]) {
      const classes = Object.entries(exports).filter(
        ([name, value]) => typeof value === 'function' && /^[A-Z]/.test(name),
      );
      expect(classes.length).toBeGreaterThan(10);
      for (const [name, value] of classes) expect((value as { name: string }).name, name).toBe(name);
    }
  });
});

describe('the package, loaded by its name', () => {
  // What each entry must offer: removing one of these breaks an application that imports it.
  const publicNames: Record<(typeof entries)[number], string[]> = {
    index: [
      'CacheTags',
      'ConnectionError',
      'DisconnectedError',
      'InvalidIdentifierError',
      'InvalidKeyError',
      'InvalidOptionError',
      'InvalidValueError',
      'LockTimeoutError',
      'NullCache',
      'PgListener',
      'PostgresAdapter',
      'PostgresCache',
      'PostgresCacheError',
      'QueryError',
      'SchemaError',
      'TABLE_OPERATIONS',
      'TableInvalidation',
      'TableWatcher',
      'affectsWholeTable',
      'assertStorableKey',
      'backoffDelay',
      'cached',
      'decodeCacheChange',
      'decodeChannelMessage',
      'decodeTableEvent',
      'eventRows',
      'greedy',
      'installTableWatch',
      'invalidateOnTableChange',
      'isConnectionFailure',
      'isRolledBackForAnother',
      'keyDigestHex',
      'leaseListener',
      'listTableWatches',
      'normalizeTtl',
      'quoted',
      'sqlStateOf',
      'tableChangeChannel',
      'tableWatcherFor',
      'textOf',
      'timed',
      'toCacheError',
      'uninstallTableWatch',
      'windowed',
    ],
    'cache-manager': ['createPostgresCacheManager'],
    nestjs: ['InjectPostgresCache', 'POSTGRES_CACHE', 'POSTGRES_CACHE_OPTIONS', 'PostgresCacheModule'],
  };

  it('require() gets the CommonJS build and import the ES module, of every entry, with its public names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgcache-load-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(process.cwd(), join(dir, 'node_modules', 'postgres-cache'), 'dir');
      const specifiers = entries.map((entry) =>
        entry === 'index' ? 'postgres-cache' : `postgres-cache/${entry}`,
      );
      writeFileSync(
        join(dir, 'consumer.cjs'),
        `console.log(JSON.stringify(${JSON.stringify(specifiers)}.map((name) => ({ ` +
          'file: require.resolve(name), names: Object.keys(require(name)).sort() }))));\n',
      );
      writeFileSync(
        join(dir, 'consumer.mjs'),
        "import { fileURLToPath } from 'node:url';\nconst out = [];\n" +
          `for (const name of ${JSON.stringify(specifiers)}) out.push({ ` +
          'file: fileURLToPath(import.meta.resolve(name)), names: Object.keys(await import(name)).sort() });\n' +
          'console.log(JSON.stringify(out));\n',
      );
      const load = (file: string) => {
        const child = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' });
        expect(child.stderr).toBe('');
        expect(child.status).toBe(0);
        return JSON.parse(child.stdout) as Array<{ file: string; names: string[] }>;
      };
      const built = (extension: string) =>
        entries.map((entry) => ({
          file: join(realpathSync(process.cwd()), 'dist', `${entry}.${extension}`),
          names: publicNames[entry],
        }));
      expect(load('consumer.cjs')).toEqual(built('cjs'));
      expect(load('consumer.mjs')).toEqual(built('js'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the type declarations', () => {
  // Many existing NestJS apps still compile with `"module": "commonjs"`, whose resolution (node10) ignores
  // package.json "exports": the subpaths must resolve all the same.
  it.each(['node10', 'node16', 'bundler'])(
    'resolve for every entry under moduleResolution %s',
    (resolution) => {
      const dir = mkdtempSync(join(tmpdir(), 'pgcache-types-'));
      try {
        mkdirSync(join(dir, 'node_modules'));
        symlinkSync(process.cwd(), join(dir, 'node_modules', 'postgres-cache'), 'dir');
        const module = { node10: 'commonjs', node16: 'node16', bundler: 'esnext' }[resolution];
        writeFileSync(
          join(dir, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              strict: true,
              noEmit: true,
              skipLibCheck: true,
              module,
              moduleResolution: resolution,
              typeRoots: [join(process.cwd(), 'node_modules', '@types')],
              types: ['node'],
            },
            files: ['consumer.ts'],
          }),
        );
        writeFileSync(
          join(dir, 'consumer.ts'),
          [
            "import { PostgresCache } from 'postgres-cache';",
            "import { createPostgresCacheManager } from 'postgres-cache/cache-manager';",
            "import { PostgresCacheModule } from 'postgres-cache/nestjs';",
            'export const made: [typeof PostgresCache, typeof createPostgresCacheManager, typeof PostgresCacheModule] = [',
            '  PostgresCache, createPostgresCacheManager, PostgresCacheModule,',
            '];',
            '',
          ].join('\n'),
        );
        const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], {
          encoding: 'utf8',
        });
        expect(tsc.stdout + tsc.stderr).toBe('');
        expect(tsc.status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
