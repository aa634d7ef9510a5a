// LISTENs on many channels at once while heartbeats run every millisecond, then NOTIFYs each channel
// once; prints the process warnings it saw and how many channels were heard, as one JSON line.
import pg from 'pg';
import { PgListener } from '../../../src/notify/listener.js';

const [url, count] = process.argv.slice(2) as [string, string];
const warnings: string[] = [];
process.on('warning', (warning) => warnings.push(`${warning.name}: ${warning.message}`));

const listener = new PgListener({ connection: url, heartbeatInterval: 1, heartbeatTimeout: 10_000 });
listener.on('error', (error) => warnings.push(`listener error: ${error.message}`));
await listener.start();
const channels = Array.from({ length: Number(count) }, (_, i) => `listener_burst_${process.pid}_${i}`);
const heard = new Set<string>();
await Promise.all(channels.map((channel) => listener.listen(channel, () => heard.add(channel))));

const notifier = new pg.Client({ connectionString: url });
await notifier.connect();
for (const channel of channels) await notifier.query(`NOTIFY "${channel}"`);
await notifier.end();
const deadline = Date.now() + 10_000;
while (heard.size < channels.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
await listener.close();
process.stdout.write(`${JSON.stringify({ warnings, heard: heard.size })}\n`);
