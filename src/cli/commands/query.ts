// `flotilla query list|get|search RESOURCE [ID|Q] [--source local|PEER|all]`: a federated
// query against this manager, as the caller (its own rows here, its grant subject's on peers).
import type { Command } from 'commander';
import {
  type FederatedQueryAnswer,
  type FederatedQueryBody,
  peeringApi,
} from '../../../client/peering-api.ts';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

const RESOURCES = ['services', 'jobs', 'logs', 'status', 'buckets'];

interface QueryFlags extends ClientFlags {
  source: string;
  limit?: string;
  cursor?: string;
  all?: boolean;
}

/** The column a row is known by, per resource. */
const keyOf = (r: Record<string, unknown>): string =>
  String(r.name ?? r.id ?? r.bucket_name ?? r.cluster_id ?? '');

const print = (verb: string, a: FederatedQueryAnswer): void => {
  if (verb === 'get' && a.rows.length === 1) {
    process.stdout.write(`${JSON.stringify(a.rows[0], null, 2)}\n`);
  } else {
    printTable(
      [
        'SOURCE',
        verb === 'search' ? 'RESOURCE' : 'KEY',
        ...(verb === 'search' ? ['KEY', 'RANK'] : ['DETAIL']),
      ],
      a.rows.map((r) => {
        const { _source, _cached, _resource, _rank, name, id, bucket_name, ...rest } = r;
        const key = keyOf(r);
        const src = `${_source}${_cached ? ' (cached)' : ''}`;
        if (verb === 'search') return [src, String(_resource), key, String(_rank)];
        const detail = Object.entries(rest)
          .filter(([, v]) => v !== null && typeof v !== 'object')
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        return [src, key, detail.slice(0, 100)];
      }),
    );
  }
  if (a._partial?.length) process.stderr.write(`partial: no answer from ${a._partial.join(', ')}\n`);
  if (a.next_cursor) process.stderr.write(`more rows: --cursor ${a.next_cursor} (or --all)\n`);
};

const query = (verb: 'list' | 'get' | 'search') =>
  run(async (resource: string, arg: string | string[] | undefined, opts: QueryFlags, _cmd?: Command) => {
    const words = Array.isArray(arg) ? arg : arg === undefined ? [] : [arg];
    const body: FederatedQueryBody = { verb, source: opts.source };
    if (verb === 'search') {
      // `search RESOURCE Q…`, `search all Q…` or just `search Q…`.
      if (RESOURCES.includes(resource) && words.length) body.resource = resource;
      else if (resource !== 'all' || !words.length) words.unshift(resource);
      body.q = words.join(' ');
    } else body.resource = resource;
    if (verb === 'get') {
      if (!words[0]) throw new Error('get needs an ID (service name, job id, bucket name or cluster id)');
      body.id = words[0];
    }
    if (opts.limit !== undefined) {
      const n = Number(opts.limit);
      if (!Number.isInteger(n) || n < 1) throw new Error('--limit: a whole number of at least 1');
      body.limit = n;
    }
    if (opts.cursor) body.cursor = opts.cursor;
    const api = peeringApi(clientFrom(opts));
    let answer = await api.query(body);
    if (opts.all && verb !== 'get') {
      // Follow the cursor: every page, one answer (partial peers gathered).
      const rows = [...answer.rows];
      const partial = new Set(answer._partial ?? []);
      while (answer.next_cursor) {
        answer = await api.query({ ...body, cursor: answer.next_cursor });
        rows.push(...answer.rows);
        for (const p of answer._partial ?? []) partial.add(p);
      }
      answer = { rows, next_cursor: null, ...(partial.size ? { _partial: [...partial].sort() } : {}) };
    }
    if (opts.json) return printJson(answer);
    print(verb, answer);
  });

export const registerQuery = (program: Command): void => {
  const q = program
    .command('query')
    .description('list, get or search services, jobs, logs, status and buckets here and on peers');
  const common = (cmd: Command) =>
    withClientOptions(
      cmd
        .option('--source <source>', 'local, a peer (cluster id) or all', 'local')
        .option('--limit <n>', 'rows per source and page')
        .option('--cursor <cursor>', 'the next page of an earlier answer'),
    );
  common(
    q
      .command('list')
      .description('rows of a resource')
      .argument('<resource>', RESOURCES.join('|'))
      .option('--all', 'follow the cursor to the last page'),
  ).action((resource: string, opts: QueryFlags, cmd: Command) =>
    query('list')(resource, undefined, opts, cmd),
  );
  common(
    q
      .command('get')
      .description('one row by name or id')
      .argument('<resource>', RESOURCES.join('|'))
      .argument('<id>'),
  ).action(query('get'));
  common(
    q
      .command('search')
      .description('full-text search, best first (services, logs, buckets)')
      .argument('<resource>', 'services|logs|buckets|all, or the first word of the query')
      .argument('[q...]', 'the query text (quotes, "or" and "-word" work as on the web)')
      .option('--all', 'follow the cursor to the last page'),
  ).action(query('search'));
};
