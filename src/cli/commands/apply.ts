// `flotilla apply -f FDL [-c CLUSTER]`: creates each service of an oscar-cli FDL, or
// updates it when it exists. As oscar-cli does, an entry keyed by a named cluster goes to that
// cluster; `-c NAME` applies only NAME's entries (and bare services), to NAME when it is a
// named cluster; `--endpoint` sends every entry to that one manager.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiError } from '../../../client/api-client.ts';
import { parseFdl } from '../../core/fdl/fdl-file.ts';
import { loadClusters } from '../clusters.ts';
import {
  type ClientFlags,
  clientFor,
  endpointGiven,
  printJson,
  progress,
  run,
  targetOf,
  withClientOptions,
} from '../common.ts';

interface ApplyResult {
  name: string;
  cluster: string | undefined;
  action: 'created' | 'updated';
  token?: string;
  report?: unknown;
}

/** Reads the FDL and inlines each service's script (a path relative to the FDL). */
export const loadFdlServices = async (file: string, cluster?: string) => {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  const fdl = parseFdl(text);
  const entries = cluster
    ? fdl.entries.filter((e) => e.clusterId === cluster || e.clusterId === undefined)
    : fdl.entries;
  if (entries.length === 0) throw new Error(`${file} has no service for cluster "${cluster}"`);
  const base = dirname(resolve(file));
  return Promise.all(
    entries.map(async (e) => {
      const service = { ...e.service };
      if (e.scriptPath) {
        const path = resolve(base, e.scriptPath);
        service.script = await readFile(path, 'utf8').catch(() => {
          throw new Error(
            `cannot read script ${e.scriptPath} (resolved to ${path}) for service ${String(service.name)}`,
          );
        });
      }
      return { clusterId: e.clusterId, service };
    }),
  );
};

interface FederationReport {
  outcome: string;
  members: Array<{ cluster_id: string; service_name: string; status: string; error?: string }>;
}

const isReport = (r: unknown): r is FederationReport =>
  !!r && typeof r === 'object' && Array.isArray((r as FederationReport).members);

/** One line per member: where each replica stands after the create. */
const printMemberReport = (r: FederationReport): void => {
  for (const m of r.members) {
    progress(`  ${m.status.padEnd(15)} ${m.cluster_id}/${m.service_name}${m.error ? `: ${m.error}` : ''}`);
  }
  progress(`  federation ${r.outcome}`);
};

export const registerApply = (program: Command): void => {
  withClientOptions(
    program
      .command('apply')
      .description('create or update the services of an FDL file (oscar-cli layout)')
      .requiredOption('-f, --file <fdl>', 'FDL file'),
  ).action(
    run(async (opts: ClientFlags & { file: string }) => {
      const named = loadClusters().file.oscar;
      // -c that names no cluster only picks the FDL entries (the FDL's own cluster ids).
      const filterOnly = opts.cluster !== undefined && !named[opts.cluster];
      const fallback = clientFor(targetOf(opts, { cluster: filterOnly ? null : opts.cluster }));
      const clientOf = (clusterId: string | undefined) =>
        opts.cluster === undefined && !endpointGiven(opts) && clusterId && named[clusterId]
          ? clientFor(targetOf(opts, { cluster: clusterId }))
          : fallback;
      const services = await loadFdlServices(opts.file, opts.cluster);
      const results: ApplyResult[] = [];
      for (const { clusterId, service } of services) {
        const client = clientOf(clusterId);
        const name = String(service.name);
        if (!opts.json)
          progress(`applying ${name}${clusterId ? ` (cluster ${clusterId})` : ''} to ${client.endpoint} ...`);
        let exists = true;
        try {
          await client.getService(name);
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) exists = false;
          else throw e;
        }
        const members = (service.federation as { members?: unknown[] } | undefined)?.members?.length ?? 0;
        if (!opts.json && members > 0)
          progress(`  ${exists ? 'updating' : 'deploying'} across ${members} member(s) ...`);
        let report: unknown;
        try {
          report = exists ? await client.updateService(service) : await client.createService(service);
        } catch (e) {
          const failed =
            e instanceof ApiError
              ? (e.body as { details?: { report?: FederationReport } })?.details?.report
              : undefined;
          if (failed && !opts.json) printMemberReport(failed);
          throw e;
        }
        const stored = await client.getService(name);
        results.push({
          name,
          cluster: clusterId,
          action: exists ? 'updated' : 'created',
          token: stored.token,
          ...(report ? { report } : {}),
        });
        if (!opts.json && isReport(report)) printMemberReport(report);
        if (!opts.json) progress(`  ${exists ? 'updated' : 'created'} ${name}`);
      }
      if (opts.json) printJson(results);
      else for (const r of results) process.stdout.write(`${r.action} ${r.name} token=${r.token ?? '-'}\n`);
    }),
  );
};
