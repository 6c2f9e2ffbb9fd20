// `flotilla demo`: three clusters on loopback with different capacities, a federated mesh
// service whose script does visible work on an input file, 20 jobs sent to the first
// cluster, and a table of where each ran and why — with every output in the origin's bucket.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { FlotillaClient, jobsApi } from '../../../client/api-client.ts';
import { printTable, progress, run } from '../common.ts';
import { freePort } from '../free-port.ts';

const CLI = fileURLToPath(new URL('../../../bin/flotilla.mjs', import.meta.url));

interface DemoCluster {
  id: string;
  cpus: string;
  url: string;
  proc: ChildProcess;
  client: FlotillaClient;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ClusterToStart {
  root: string;
  id: string;
  cpus: string;
  password: string;
  /** Every process started, known at once: a failed start elsewhere still stops them all. */
  spawned: ChildProcess[];
}

/** Starts one cluster; a port taken meanwhile by another socket gets a second try elsewhere. */
const startCluster = async (c: ClusterToStart): Promise<DemoCluster> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(c);
    } catch (e) {
      if (attempt >= 3 || !/EADDRINUSE/.test((e as Error).message)) throw e;
    }
  }
};

const startClusterOnce = async ({
  root,
  id,
  cpus,
  password,
  spawned,
}: ClusterToStart): Promise<DemoCluster> => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [CLI, 'up', '--port', String(port), '--cluster-id', id, '--data-dir', join(root, id)];
  args.push('--cpus', cpus, '--memory', '8Gi', '--log-level', 'warn');
  const proc = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      FLOTILLA_ADMIN_PASSWORD: password,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  spawned.push(proc);
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += d;
  });
  const client = new FlotillaClient({ endpoint: url, user: 'oscar', password });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`cluster ${id} exited during start: ${stderr.slice(-500)}`);
    if (await client.health().catch(() => false)) return { id, cpus, url, proc, client };
    await sleep(200);
  }
  throw new Error(`cluster ${id} did not start within 90 s`);
};

/** The demo's script: visible work on the input, a second of "compute", one output file.
 * Each replica has its own service name, so the output says which one did the work. */
const SCRIPT = `#!/bin/sh
name=$(basename "$INPUT_FILE_PATH")
echo "processing $name with replica $OSCAR_SERVICE_NAME"
lines=$(wc -l < "$INPUT_FILE_PATH"); words=$(wc -w < "$INPUT_FILE_PATH")
sleep 1
{ echo "file: $name"; echo "processed by: $OSCAR_SERVICE_NAME"; echo "lines: $lines words: $words";
  echo "---"; tr '[:lower:]' '[:upper:]' < "$INPUT_FILE_PATH" | rev; } > "$TMP_OUTPUT_DIR/$name.result"
`;

const POEM = [
  'a flotilla of small boats',
  'carries work from shore to shore',
  'each one light, together strong',
  'no cargo lost along the way',
];

const why = (ranOn: string, origin: string, delegatedAtIntake: boolean, policy: string): string => {
  if (ranOn === origin) return `${origin} had a free node`;
  return delegatedAtIntake
    ? `${origin} was full at intake; ${policy} chose ${ranOn}`
    : `waited past the rescheduler threshold; ${policy} chose ${ranOn}`;
};

export const registerDemo = (program: Command): void => {
  program
    .command('demo')
    .description(
      'start 3 clusters on loopback, deploy a federated service, run 20 jobs and show where each ran',
    )
    .option('--jobs <n>', 'jobs to send', '20')
    .option('--keep', 'leave the clusters running until Ctrl-C')
    .action(
      run(async (opts: { jobs: string; keep?: boolean }) => {
        const jobs = Math.max(1, Math.min(200, Number(opts.jobs) || 20));
        const root = await mkdtemp(join(tmpdir(), 'flotilla-demo-'));
        const password = randomBytes(12).toString('base64url');
        const clusters: DemoCluster[] = [];
        const spawned: ChildProcess[] = [];
        const stopAll = async () => {
          for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
          await sleep(500);
          await rm(root, { recursive: true, force: true });
        };
        try {
          progress('starting 3 clusters on loopback (alpha: 1 cpu, beta: 2 cpus, gamma: 4 cpus) ...');
          clusters.push(
            ...(await Promise.all([
              startCluster({ root, id: 'alpha', cpus: '1', password, spawned }),
              startCluster({ root, id: 'beta', cpus: '2', password, spawned }),
              startCluster({ root, id: 'gamma', cpus: '4', password, spawned }),
            ])),
          );
          for (const c of clusters) progress(`  ${c.id.padEnd(6)} ${c.url}  (${c.cpus} cpu)`);
          const [alpha] = clusters;
          const map = Object.fromEntries(
            clusters.map((c) => [c.id, { endpoint: c.url, auth_user: 'oscar', auth_password: password }]),
          );
          const policy = 'load-based';
          progress(`deploying the federated service "poems" (mesh, ${policy}) from alpha ...`);
          const report = (await alpha.client.createService({
            name: 'poems',
            image: 'alpine',
            cpu: '1',
            memory: '128Mi',
            script: SCRIPT,
            input: [{ storage_provider: 'minio.default', path: 'poems/in' }],
            output: [{ storage_provider: 'minio.default', path: 'poems/out' }],
            clusters: map,
            federation: {
              topology: 'mesh',
              delegation: policy,
              rescheduler_threshold: 3,
              members: [
                { type: 'oscar', cluster_id: 'beta', service_name: 'poems-beta' },
                { type: 'oscar', cluster_id: 'gamma', service_name: 'poems-gamma' },
              ],
            },
          })) as { members: Array<{ cluster_id: string; status: string }> };
          for (const m of report.members) progress(`  ${m.cluster_id}: ${m.status}`);
          progress('waiting for the status cache to see the replicas ...');
          await sleep(3000);

          const { token } = await alpha.client.getService('poems');
          const api = jobsApi(alpha.client);
          progress(`sending ${jobs} jobs to alpha ...`);
          const sent: Array<{ id: string; atIntake: string | null; input: string }> = [];
          for (let i = 0; i < jobs; i++) {
            const input = `poem-${String(i + 1).padStart(2, '0')}.txt`;
            const text = `${POEM.slice(0, 1 + (i % POEM.length)).join('\n')}\n`;
            const res = await api.submit('poems', Buffer.from(text).toString('base64'), token);
            sent.push({ id: res.job_id, atIntake: res.delegated_to, input });
          }
          progress('waiting for every job to finish ...');
          let listing: Awaited<ReturnType<typeof api.list>>['jobs'] = {};
          const deadline = Date.now() + 180_000;
          while (Date.now() < deadline) {
            listing = (await api.list('poems')).jobs;
            const done = sent.filter((s) =>
              ['Succeeded', 'Failed'].includes(listing[s.id]?.status ?? ''),
            ).length;
            process.stderr.write(`\r  ${done}/${jobs} finished`);
            if (done === jobs) break;
            await sleep(1000);
          }
          process.stderr.write('\n');
          printTable(
            ['#', 'JOB', 'STATUS', 'RAN ON', 'WHY'],
            sent.map((s, i) => {
              const j = listing[s.id];
              const ranOn = j?.delegated_to ?? 'alpha';
              return [
                String(i + 1),
                // Job names are <service>-<uuid>: the uuid's first 8 characters tell them apart.
                s.id.slice(-36, -28),
                j?.status ?? '?',
                ranOn,
                // The decision alpha recorded, in its words; the guess only for a job without one.
                j?.delegation?.summary ?? why(ranOn, 'alpha', !!s.atIntake, policy),
              ];
            }),
          );
          const counts = new Map<string, number>();
          for (const s of sent) {
            const on = listing[s.id]?.delegated_to ?? 'alpha';
            counts.set(on, (counts.get(on) ?? 0) + 1);
          }
          process.stdout.write(`\nper cluster: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
          const objects = await api.objects('poems');
          const results = objects.objects.filter((o) => o.object_name.startsWith('out/'));
          process.stdout.write(`outputs in alpha's bucket poems/out: ${results.length} of ${jobs}\n`);
          const sample = results[0]?.object_name;
          if (sample) {
            const signed = await api.presign('poems', sample, 'download');
            const body = await (await fetch(signed.url)).text();
            process.stdout.write(`\n${sample}:\n${body}\n`);
          }
          process.stdout.write(
            `API and its documentation: ${alpha.url}/docs (user oscar, password ${opts.keep ? password : 'printed with --keep'})\n`,
          );
          process.stdout.write(
            `dashboard: ${alpha.url}/ui${opts.keep ? '' : ' (the clusters stop when the demo ends: run with --keep to look at it)'}\n`,
          );
          if (opts.keep) {
            progress('clusters keep running; Ctrl-C stops them');
            await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
          }
        } finally {
          await stopAll();
        }
      }),
    );
};
