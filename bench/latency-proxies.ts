// The network of a bench, in its own process: one latency proxy (bench/lib.ts
// startLatencyProxy) per target given on the command line, so relaying the bytes does not
// run on the event loop of the manager being measured. Prints the proxies' URLs as one JSON
// line, in the order of the targets, and stops when its stdin closes.
//   node bin/run-ts.mjs bench/latency-proxies.ts <one-way ms> <target url>...
import { startLatencyProxy } from './lib.ts';

const [oneWay, ...targets] = process.argv.slice(2);
const proxies: Array<{ url: string; close(): Promise<void> }> = [];
for (const t of targets) proxies.push(await startLatencyProxy(t, Number(oneWay)));
process.stdout.write(`${JSON.stringify(proxies.map((p) => p.url))}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  for (const p of proxies) await p.close();
  process.exit(0);
});
