// One fault round over real managers: a seeded schedule of faults (SIGKILL + restart,
// SIGSTOP + SIGCONT, partitions, slow links, lost answers) runs while a seeded mixed workload
// (federated creates, member changes, updates, deletes, jobs that delegate) goes on; then
// everything is healed and the invariants are checked: every accepted job ended exactly once,
// every federation converged to its latest revision on every member, no orphan worker
// anywhere, no secret in any log. Violations come back as text, so the test asserts there
// are none and the bench prints how many. The schedule is a pure function of the seed.
import { readFile } from 'node:fs/promises';
import { ApiError, FlotillaClient, jobsApi } from '../../client/api-client.ts';
import type { ClusterProcess } from '../support/cluster-harness.ts';
import { prng, type RunCounter } from '../support/run-counter.ts';
import type { FaultProxy } from './fault-proxy.ts';

export type FaultKind = 'kill' | 'stop' | 'partition' | 'delay' | 'lose-answers';

export interface FaultEvent {
  /** ms after the round starts. */
  at: number;
  kind: FaultKind;
  target: string;
  /** How long it lasts (a kill: until the restart begins). */
  forMs: number;
  /** For `delay`: per chunk. */
  delayMs?: number;
}

const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'partition', 'delay', 'lose-answers'];

/** The round's faults: one after another with short gaps, now and then two at once. */
export const faultSchedule = (seed: number, durationMs: number, targets: readonly string[]): FaultEvent[] => {
  const r = prng(seed ^ 0x5eed);
  const out: FaultEvent[] = [];
  let at = r.int(300, 1500);
  let last: string | undefined;
  while (at < durationMs - 1000) {
    const kind = r.pick(FAULT_KINDS);
    const forMs =
      kind === 'kill'
        ? r.int(200, 2500)
        : kind === 'stop'
          ? r.int(1000, 7000)
          : kind === 'delay'
            ? r.int(2000, 6000)
            : r.int(1000, 5000);
    const overlap = r.next() < 0.3;
    const target = overlap && last ? r.pick(targets.filter((t) => t !== last)) : r.pick(targets);
    out.push({ at, kind, target, forMs, ...(kind === 'delay' ? { delayMs: r.int(300, 2500) } : {}) });
    last = target;
    at += (overlap ? 0 : forMs) + r.int(300, 2500);
  }
  return out;
};

export const describeSchedule = (events: readonly FaultEvent[]): string =>
  events
    .map(
      (e) =>
        `+${(e.at / 1000).toFixed(1)}s ${e.kind}${e.delayMs ? `(${e.delayMs}ms)` : ''} ${e.target} for ${(e.forMs / 1000).toFixed(1)}s`,
    )
    .join('; ');

export interface RoundSetup {
  clusters: readonly ClusterProcess[];
  /** The proxy in front of each cluster, by id: how the others reach it. */
  proxies: Record<string, FaultProxy>;
  counter: RunCounter;
  adminPassword: string;
  seed: number;
  durationMs: number;
  /** Longest wait for jobs to end and federations to converge after the heal. */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface RoundResult {
  seed: number;
  schedule: FaultEvent[];
  faults: Record<FaultKind, number>;
  ops: Record<string, number>;
  jobs: { sent: number; accepted: number; succeeded: number; failed: number; runs: number };
  violations: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until `check` returns no problems, or the deadline; the last problems otherwise.
 * With `drainMs`, a count of problems that keeps falling moves the deadline on (a backlog of
 * accepted jobs that is still being worked off is not a violation; one that stops falling for
 * `drainMs` is), up to `capMs` in all.
 */
const settle = async (
  check: () => Promise<string[]>,
  ms: number,
  drain?: { drainMs: number; capMs: number; log?: (line: string) => void },
): Promise<string[]> => {
  const started = Date.now();
  let deadline = started + ms;
  let fewest = Number.POSITIVE_INFINITY;
  let lastLog = started;
  for (;;) {
    let problems: string[];
    try {
      problems = await check();
    } catch (e) {
      problems = [`check failed: ${(e as Error).message}`];
    }
    const now = Date.now();
    if (drain && problems.length < fewest) {
      fewest = problems.length;
      deadline = Math.min(started + drain.capMs, Math.max(deadline, now + drain.drainMs));
    }
    if (drain?.log && now - lastLog > 30_000) {
      drain.log(`[settle] ${problems.length} left after ${Math.round((now - started) / 1000)} s`);
      lastLog = now;
    }
    if (problems.length === 0 || now > deadline) return problems;
    await sleep(1000);
  }
};

const FINAL = new Set(['Succeeded', 'Failed']);

interface Federation {
  name: string;
  coordinator: string;
  members: string[];
  jobs?: boolean;
}

interface Accepted {
  coordinator: string;
  service: string;
  jobId: string;
  marker: string;
}

export const runFaultRound = async (s: RoundSetup): Promise<RoundResult> => {
  const log = s.log ?? (() => {});
  const ids = s.clusters.map((c) => c.id);
  const byId = new Map(s.clusters.map((c) => [c.id, c]));
  const schedule = faultSchedule(s.seed, s.durationMs, ids);
  log(`[schedule] FAULT_SEED=${s.seed}: ${describeSchedule(schedule)}`);
  const r = prng(s.seed);
  // Clients with a short timeout: a stalled manager must not hold the workload up.
  const client = (id: string) =>
    new FlotillaClient({
      endpoint: byId.get(id)!.url,
      user: 'oscar',
      password: s.adminPassword,
      timeoutMs: 15_000,
    });
  const clients = new Map(ids.map((id) => [id, client(id)]));
  const api = (id: string) => clients.get(id)!;
  const clustersMap = Object.fromEntries(
    ids.map((id) => [
      id,
      { endpoint: s.proxies[id].url, auth_user: 'oscar', auth_password: s.adminPassword },
    ]),
  );
  const tag = `s${s.seed.toString(36)}`;
  const federations: Federation[] = [];
  const accepted: Accepted[] = [];
  const markers: string[] = [];
  const ops: Record<string, number> = {};
  const count = (op: string, ok: boolean) => {
    const k = `${op}:${ok ? 'ok' : 'failed'}`;
    ops[k] = (ops[k] ?? 0) + 1;
  };
  const definition = (f: Federation, deployment = 'atomic') => ({
    name: f.name,
    image: 'alpine',
    script: f.jobs ? jobScript(s.counter.port) : '#!/bin/sh\necho hi\n',
    cpu: f.jobs ? '0.6' : '0.1',
    memory: '32Mi',
    clusters: clustersMap,
    federation: {
      topology: 'star',
      delegation: r.pick(['static', 'random', 'load-based']),
      rescheduler_threshold: 2,
      deployment,
      members: f.members.map((m) => ({ type: 'oscar', cluster_id: m, service_name: `${f.name}-${m}` })),
    },
  });

  // Before the faults: two federations that take the jobs, coordinated by different clusters.
  for (const coordinator of ids.slice(0, 2)) {
    const f: Federation = {
      name: `jobs-${tag}-${coordinator}`,
      coordinator,
      members: ids.filter((i) => i !== coordinator),
      jobs: true,
    };
    await api(coordinator).createService(definition(f));
    federations.push(f);
  }

  // ------------------------------------------------------------------ the faults
  const faults: Record<FaultKind, number> = { kill: 0, stop: 0, partition: 0, delay: 0, 'lose-answers': 0 };
  const started = Date.now();
  const inFlight: Promise<void>[] = [];
  const apply = async (e: FaultEvent) => {
    await sleep(Math.max(0, started + e.at - Date.now()));
    const c = byId.get(e.target)!;
    const proxy = s.proxies[e.target];
    faults[e.kind] += 1;
    if (e.kind === 'kill') {
      await c.kill();
      await sleep(e.forMs);
      await c.start();
    } else if (e.kind === 'stop') {
      c.pause();
      await sleep(e.forMs);
      c.resume();
    } else {
      proxy.mode =
        e.kind === 'partition'
          ? { kind: 'drop' }
          : e.kind === 'delay'
            ? { kind: 'delay', ms: e.delayMs ?? 1000 }
            : { kind: 'lose-answers' };
      await sleep(e.forMs);
      proxy.mode = { kind: 'pass' };
    }
  };
  // Faults on one target apply in order (a restart finishes before its next fault).
  const lanes = new Map<string, Promise<void>>();
  for (const e of schedule) {
    const lane = (lanes.get(e.target) ?? Promise.resolve()).then(() => apply(e));
    lanes.set(e.target, lane);
  }
  inFlight.push(...lanes.values());

  // ------------------------------------------------------------------ the workload
  let n = 0;
  const oneOp = async () => {
    const i = n++;
    const roll = r.next();
    const plain = federations.filter((f) => !f.jobs);
    if (roll < 0.5) return jobOne(i);
    if (roll < 0.65 || plain.length === 0) return createOne(i);
    const f = r.pick(plain);
    const op = roll < 0.82 ? 'members' : roll < 0.96 ? 'update' : 'delete';
    try {
      if (op === 'members') {
        // Take one member away (deleting its worker), or bring it back.
        const gone = ids.find((m) => m !== f.coordinator && !f.members.includes(m));
        const m = gone ?? r.pick(f.members);
        const member = { type: 'oscar', cluster_id: m, service_name: `${f.name}-${m}` };
        if (gone) {
          await api(f.coordinator).request('POST', `/system/federation/${f.name}`, {
            body: { members: [member] },
          });
          f.members.push(gone);
        } else {
          await api(f.coordinator).request('DELETE', `/system/federation/${f.name}`, {
            body: { members: [member], delete: true },
          });
          f.members = f.members.filter((x) => x !== m);
        }
      } else if (op === 'update') {
        // GET, edit, PUT (as OSCAR clients do): it propagates to every member.
        const svc = (await api(f.coordinator).getService(f.name)) as Record<string, any>;
        svc.environment = {
          ...(svc.environment ?? {}),
          variables: { ...(svc.environment?.variables ?? {}), ROUND: String(i) },
        };
        await api(f.coordinator).updateService(svc);
      } else {
        await api(f.coordinator).deleteService(f.name);
      }
      count(op, true);
    } catch {
      count(op, false);
    }
  };
  const jobOne = async (i: number) => {
    const f = r.pick(federations.filter((x) => x.jobs));
    const marker = `${tag}-j${i}`;
    markers.push(marker);
    try {
      const res = await jobsApi(api(f.coordinator)).submit(
        f.name,
        Buffer.from(`${marker}\n`).toString('base64'),
      );
      accepted.push({ coordinator: f.coordinator, service: f.name, jobId: res.job_id, marker });
      count('job', true);
    } catch {
      count('job', false);
    }
  };
  const createOne = async (i: number) => {
    const coordinator = r.pick(ids);
    const f: Federation = {
      name: `f-${tag}-${i}`,
      coordinator,
      members: ids.filter((x) => x !== coordinator),
    };
    federations.push(f);
    try {
      await api(coordinator).createService(definition(f, r.pick(['atomic', 'best-effort'])));
      count('create', true);
    } catch {
      count('create', false);
    }
  };
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      while (Date.now() - started < s.durationMs) await oneOp();
    }),
  );

  // ------------------------------------------------------------------ heal, then check
  await Promise.all(inFlight);
  for (const p of Object.values(s.proxies)) p.mode = { kind: 'pass' };
  for (const c of s.clusters) {
    c.resume();
    if (!c.running) await c.start();
  }
  log(`[round] seed ${s.seed}: workload over after ${Math.round((Date.now() - started) / 1000)} s; settling`);
  const settleMs = s.settleMs ?? 120_000;
  const violations: string[] = [];
  const jobStatus = new Map<string, string>();

  // 1. Every accepted job ended exactly once.
  violations.push(
    ...(await settle(
      async () => {
        const problems: string[] = [];
        const listings = new Map<string, Record<string, { status: string }>>();
        for (const a of accepted) {
          const key = `${a.coordinator}/${a.service}`;
          if (!listings.has(key)) listings.set(key, await allJobsOf(api(a.coordinator), a.service));
          const st = listings.get(key)![a.jobId]?.status;
          jobStatus.set(a.jobId, st ?? 'missing');
          if (!st) problems.push(`accepted job ${a.jobId} (${a.marker}) is missing on ${a.coordinator}`);
          else if (!FINAL.has(st)) problems.push(`accepted job ${a.jobId} (${a.marker}) still ${st}`);
        }
        return problems;
      },
      settleMs,
      { drainMs: 60_000, capMs: 30 * 60_000, log },
    )),
  );
  log(
    `[round] seed ${s.seed}: jobs settled ${Math.round((Date.now() - started) / 1000)} s after the round began`,
  );
  for (const m of s.counter.twice())
    if (m.startsWith(`${tag}-`)) violations.push(`${m} ran ${s.counter.runs(m)} times`);
  for (const a of accepted) {
    if (jobStatus.get(a.jobId) === 'Succeeded' && s.counter.runs(a.marker) !== 1)
      violations.push(`job ${a.jobId} (${a.marker}) succeeded but ran ${s.counter.runs(a.marker)} times`);
  }

  // 2. Every federation converged to its latest revision on every member; 3. no orphan.
  violations.push(...(await settle(() => federationProblems(api, ids, federations), settleMs)));
  violations.push(...(await settle(() => orphanProblems(api, ids, tag), settleMs)));

  // 4. No secret in any log.
  violations.push(...(await secretProblems(s.clusters, api, ids, s.adminPassword)));

  const statuses = accepted.map((a) => jobStatus.get(a.jobId));
  return {
    seed: s.seed,
    schedule,
    faults,
    ops,
    jobs: {
      sent: markers.length,
      accepted: accepted.length,
      succeeded: statuses.filter((x) => x === 'Succeeded').length,
      failed: statuses.filter((x) => x === 'Failed').length,
      runs: markers.reduce((sum, m) => sum + s.counter.runs(m), 0),
    },
    violations,
  };
};

/** The jobs' script: reports its run to the counter, then works a moment. */
const jobScript = (port: number) => `#!/bin/sh
marker=$(head -n 1 "$INPUT_FILE_PATH" | tr -cd 'A-Za-z0-9._-')
wget -q -O /dev/null "http://127.0.0.1:${port}/ran/$marker"
echo "marker=$marker ran-on=$OSCAR_SERVICE_NAME"
sleep 0.5
`;

const allJobsOf = async (c: FlotillaClient, service: string) => {
  const out: Record<string, { status: string }> = {};
  let page: string | undefined;
  do {
    const res = await jobsApi(c).list(service, page);
    Object.assign(out, res.jobs);
    page = res.next_page || undefined;
  } while (page);
  return out;
};

const getOr404 = async (c: FlotillaClient, name: string): Promise<Record<string, any> | undefined> => {
  try {
    return (await c.getService(name)) as Record<string, any>;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return undefined;
    throw e;
  }
};

/** A coordinator that holds its service: every member synced at its revision, each worker at it. */
const federationProblems = async (
  api: (id: string) => FlotillaClient,
  ids: readonly string[],
  federations: readonly Federation[],
): Promise<string[]> => {
  const problems: string[] = [];
  for (const f of federations) {
    const coord = await getOr404(api(f.coordinator), f.name);
    if (!coord) {
      // Never created (or deleted): no worker of it anywhere.
      for (const id of ids) {
        if (id === f.coordinator) continue;
        if (await getOr404(api(id), `${f.name}-${id}`))
          problems.push(`${id}/${f.name}-${id} outlives ${f.name}`);
      }
      continue;
    }
    const view = await api(f.coordinator).request<{
      revision: number;
      members: Array<{
        cluster_id: string;
        service_name: string;
        sync?: { state: string; revision: number | null; last_error?: string | null };
      }> | null;
    }>('GET', `/system/federation/${f.name}`);
    for (const m of view.members ?? []) {
      if (m.sync?.state !== 'synced' || m.sync.revision !== view.revision)
        problems.push(
          `${f.name}: member ${m.cluster_id} is ${m.sync?.state}@${m.sync?.revision}, not synced@${view.revision} (${m.sync?.last_error ?? 'no error'})`,
        );
      const worker = await getOr404(api(m.cluster_id), m.service_name);
      if (!worker) problems.push(`${f.name}: ${m.cluster_id}/${m.service_name} is missing`);
      else if (worker.federation?.revision !== view.revision)
        problems.push(
          `${f.name}: ${m.cluster_id}/${m.service_name} at revision ${worker.federation?.revision}, not ${view.revision}`,
        );
    }
  }
  return problems;
};

/** Every worker (marked so) belongs to a coordinator that exists and lists it. */
const orphanProblems = async (
  api: (id: string) => FlotillaClient,
  ids: readonly string[],
  tag: string,
): Promise<string[]> => {
  const problems: string[] = [];
  for (const id of ids) {
    const services = (await api(id).request<Array<Record<string, any>>>('GET', '/system/services')) ?? [];
    for (const svc of services) {
      if (!String(svc.name).includes(tag)) continue;
      if (svc.annotations?.['oscar.grycap/federation-worker'] !== 'true') continue;
      const origin = svc.annotations['oscar.grycap/origin-cluster'];
      const coordName = svc.annotations['oscar.grycap/origin-service'];
      const coord = ids.includes(origin) ? await getOr404(api(origin), coordName) : undefined;
      const listed = coord
        ? (
            (
              await api(origin).request<{
                members: Array<{ cluster_id: string; service_name: string }> | null;
              }>('GET', `/system/federation/${coordName}`)
            ).members ?? []
          ).some((m) => m.cluster_id === id && m.service_name === svc.name)
        : false;
      if (!listed)
        problems.push(
          `orphan ${id}/${svc.name} (coordinator ${origin}/${coordName} ${coord ? 'does not list it' : 'is gone'})`,
        );
    }
  }
  return problems;
};

/** The admin password, service tokens, delegation tokens and private keys appear in no log. */
const secretProblems = async (
  clusters: readonly ClusterProcess[],
  api: (id: string) => FlotillaClient,
  ids: readonly string[],
  adminPassword: string,
): Promise<string[]> => {
  const secrets = new Set<string>([adminPassword]);
  for (const id of ids) {
    const services = (await api(id).request<Array<Record<string, any>>>('GET', '/system/services')) ?? [];
    for (const svc of services)
      if (typeof svc.token === 'string' && svc.token.length >= 32) secrets.add(svc.token);
  }
  const problems: string[] = [];
  for (const c of clusters) {
    const text = await readFile(c.logFile, 'utf8').catch(() => '');
    for (const secret of secrets)
      if (text.includes(secret)) problems.push(`${c.id}'s log holds a secret (${secret.slice(0, 4)}…)`);
    if (/dlg_[0-9a-f]{64}/.test(text)) problems.push(`${c.id}'s log holds a delegation token`);
    if (/PRIVATE KEY/.test(text)) problems.push(`${c.id}'s log holds a private key`);
  }
  return problems;
};
