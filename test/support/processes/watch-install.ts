// Installs a table watch on argv[3] in schema argv[2] (the cache schema too), and prints the outcome.
import pg from 'pg';
import { installTableWatch } from '../../../src/index.js';

const [schema = 'public', table = ''] = process.argv.slice(2);
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  // Re-creating the shared function every time makes the processes contend for it.
  const plan = await installTableWatch(client, { schema, table, cacheSchema: schema });
  process.stdout.write(plan.applied ? 'installed\n' : 'not applied\n');
} catch (error) {
  process.stdout.write(`failed ${(error as { code?: string }).code ?? ''} ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await client.end();
}
