// Starts a PgListener against a server that accepts the connection and never answers (the URL given),
// closes it while the attempt is stuck, prints how long close() took, and must then exit by itself.
import { PgListener } from '../../../src/notify/listener.js';

const [url] = process.argv.slice(2);
const listener = new PgListener({ connection: url as string, connectTimeout: 60_000 });
listener.on('error', () => undefined);
void listener.start();
await new Promise((resolve) => setTimeout(resolve, 500));
const started = Date.now();
await listener.close();
process.stdout.write(`closed in ${Date.now() - started} ms\n`);
