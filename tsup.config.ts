import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'cache-manager': 'src/store/cache-manager.ts',
    nestjs: 'src/nestjs/index.ts',
    cli: 'src/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  // Without it the CommonJS build's classes are named _class12 and the like in stack traces.
  keepNames: true,
});
