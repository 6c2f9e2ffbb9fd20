// `flotilla federation get|add|update|remove SERVICE`: members of a federated service.
import type { Command } from 'commander';
import {
  type ClientFlags,
  clientFrom,
  printJson,
  printTable,
  progress,
  run,
  withClientOptions,
} from '../common.ts';

interface MemberView {
  type: string;
  cluster_id?: string;
  service_name?: string;
  url?: string;
  priority?: number;
  members?: MemberView[];
  sync?: { state: string; revision: number | null; last_error: string | null };
}

interface FederationView {
  topology: string;
  revision: number;
  role: string;
  /** null when there are none (OSCAR's answer). */
  members: MemberView[] | null;
}

const flatten = (members: MemberView[], depth = 0): Array<MemberView & { depth: number }> =>
  members.flatMap((m) => [{ ...m, depth }, ...flatten(m.members ?? [], depth + 1)]);

const show = (v: FederationView): void => {
  process.stdout.write(`topology ${v.topology}, revision ${v.revision}, this node: ${v.role}\n`);
  printTable(
    ['MEMBER', 'TYPE', 'PRIORITY', 'SYNC', 'REVISION', 'LAST ERROR'],
    flatten(v.members ?? []).map((m) => [
      `${'  '.repeat(m.depth)}${m.type === 'endpoint' ? m.url : `${m.cluster_id}/${m.service_name}`}`,
      m.type,
      String(m.priority ?? 0),
      m.sync?.state ?? '-',
      m.sync?.revision === null || m.sync?.revision === undefined ? '-' : String(m.sync.revision),
      m.sync?.last_error ?? '',
    ]),
  );
};

/** "cluster/service" or "cluster/service@priority" → a member. */
const parseMember = (text: string): MemberView => {
  if (/^https?:\/\//.test(text)) return { type: 'endpoint', url: text };
  const m = /^([^/@\s]+)\/([^/@\s]+)(?:@(\d+))?$/.exec(text);
  if (!m) throw new Error(`member "${text}" must be CLUSTER/SERVICE[@PRIORITY] or an http(s) URL`);
  return { type: 'oscar', cluster_id: m[1], service_name: m[2], ...(m[3] ? { priority: Number(m[3]) } : {}) };
};

const change = (method: 'POST' | 'PUT' | 'DELETE', verb: string) =>
  run(async (service: string, members: string[], opts: ClientFlags & { delete?: boolean }) => {
    const list = members.map(parseMember);
    if (!opts.json) progress(`${verb} ${list.length} member(s) of ${service}; propagating to every node ...`);
    const body =
      method === 'PUT' ? { update: list } : { members: list, ...(opts.delete ? { delete: true } : {}) };
    const view = await clientFrom(opts).request<FederationView>(
      method,
      `/system/federation/${encodeURIComponent(service)}`,
      { body },
    );
    if (opts.json) printJson(view);
    else show(view);
  });

export const registerFederation = (program: Command): void => {
  const fed = program.command('federation').description('members of a federated service');
  withClientOptions(
    fed.command('get').description('topology, members and their sync state').argument('<service>'),
  ).action(
    run(async (service: string, opts: ClientFlags) => {
      const view = await clientFrom(opts).request<FederationView>(
        'GET',
        `/system/federation/${encodeURIComponent(service)}`,
      );
      if (opts.json) printJson(view);
      else show(view);
    }),
  );
  withClientOptions(
    fed
      .command('add')
      .description('add members (CLUSTER/SERVICE[@PRIORITY] or URL)')
      .argument('<service>')
      .argument('<members...>'),
  ).action(change('POST', 'adding'));
  withClientOptions(
    fed
      .command('update')
      .description('update members, e.g. their priority (CLUSTER/SERVICE@PRIORITY)')
      .argument('<service>')
      .argument('<members...>'),
  ).action(change('PUT', 'updating'));
  withClientOptions(
    fed
      .command('remove')
      .description('remove members; --delete also deletes their services')
      .argument('<service>')
      .argument('<members...>')
      .option('--delete', "delete the removed members' services"),
  ).action(change('DELETE', 'removing'));
};
