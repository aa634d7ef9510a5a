import { createRequire } from 'node:module';
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
