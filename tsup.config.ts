import { defineConfig } from 'tsup';

const shared = {
  sourcemap: true,
  target: 'node20',
  // Without it the CommonJS build's classes are named _class12 and the like in stack traces.
  keepNames: true,
} as const;

export default defineConfig([
  {
    ...shared,
    entry: {
      index: 'src/index.ts',
      'cache-manager': 'src/store/cache-manager.ts',
      nestjs: 'src/nestjs/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    splitting: true,
  },
  // The command line: run, never imported, so one ES module with no declarations.
  { ...shared, entry: { cli: 'src/cli/main.ts' }, format: ['esm'] },
]);
