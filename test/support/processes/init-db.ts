// Runs PostgresAdapter.initDb() for the schema given as argv[2] and prints "ok" or the error code.
import { PostgresAdapter } from '../../../src/index.js';

const schema = process.argv[2] ?? 'public';
try {
  await PostgresAdapter.initDb({ schema });
  process.stdout.write('ok\n');
} catch (error) {
  process.stdout.write(`failed ${(error as { code?: string }).code ?? ''} ${(error as Error).message}\n`);
  process.exitCode = 1;
}
