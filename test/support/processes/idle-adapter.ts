// Uses an adapter with the sweeper on and never disconnects: the process must still exit on its own.
import { PostgresAdapter } from '../../../src/index.js';

const adapter = new PostgresAdapter({ schema: process.argv[2], sweepInterval: 50 });
await adapter.set('k', 'v', 10);
await new Promise((resolve) => setTimeout(resolve, 200));
process.stdout.write(`swept ${await adapter.sweep()}\n`);
