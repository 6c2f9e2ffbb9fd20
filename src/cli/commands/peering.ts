// `flotilla grants …`, `flotilla peers …` and `flotilla federation status`: admin commands
// against the local manager, through the HTTP client.
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import type { GrantView, PeerView } from '../../../client/peering-api.ts';
import { peeringApi } from '../../../client/peering-api.ts';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

const api = (opts: ClientFlags) => peeringApi(clientFrom(opts));

const readStdin = async (): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

const grantRow = (g: GrantView) => [g.id, g.status, g.peer_name, g.subject_user, g.cert_not_after ?? '-'];
const GRANT_HEAD = ['ID', 'STATUS', 'PEER', 'SUBJECT', 'CERT EXPIRES'];
const peerRow = (p: PeerView) => [
  p.name,
  p.state,
  p.cert_not_after,
  p.last_success_at ?? '-',
  p.last_failure_at ?? '-',
  p.last_error ?? '',
];
const PEER_HEAD = ['NAME', 'STATE', 'CERT EXPIRES', 'LAST SUCCESS', 'LAST FAILURE', 'LAST ERROR'];

const printGrant = (g: GrantView, json?: boolean) => {
  if (json) return printJson(g);
  printTable(GRANT_HEAD, [grantRow(g)]);
};

export const registerGrants = (program: Command): void => {
  const grants = program.command('grants').description('what peer clusters may do here (admin)');

  withClientOptions(
    grants
      .command('create')
      .description('create a grant (pending) for a peer cluster and a subject user')
      .requiredOption('--peer <name>', 'the peer cluster the grant is for')
      .requiredOption('--subject <user>', 'the user whose rights the peer acts with')
      .requiredOption('--scope <file>', 'scope JSON file, or - for stdin'),
  ).action(
    run(async (opts: ClientFlags & { peer: string; subject: string; scope: string }) => {
      const text = opts.scope === '-' ? await readStdin() : await readFile(opts.scope, 'utf8');
      let scope: unknown;
      try {
        scope = JSON.parse(text);
      } catch {
        throw new Error(`--scope ${opts.scope}: not valid JSON`);
      }
      printGrant(await api(opts).createGrant({ peer: opts.peer, subject: opts.subject, scope }), opts.json);
    }),
  );

  withClientOptions(
    grants
      .command('list')
      .description('list grants')
      .option('--status <status>', 'pending|active|revoked|expired'),
  ).action(
    run(async (opts: ClientFlags & { status?: string }) => {
      const list = await api(opts).listGrants(opts.status);
      if (opts.json) return printJson(list);
      printTable(GRANT_HEAD, list.map(grantRow));
    }),
  );

  withClientOptions(grants.command('show').description('show a grant and its scope').argument('<id>')).action(
    run(async (id: string, opts: ClientFlags) => {
      const g = await api(opts).getGrant(id);
      if (opts.json) return printJson(g);
      printTable(GRANT_HEAD, [grantRow(g)]);
      process.stdout.write(`scope: ${JSON.stringify(g.scope)}\n`);
    }),
  );

  withClientOptions(
    grants
      .command('revoke')
      .description(
        'revoke a grant: its certificate goes on the CRL at once; --subject USER revokes every grant of a deleted user',
      )
      .argument('[id]')
      .option(
        '--subject <user>',
        'revoke every pending or active grant of this subject (the user was deleted)',
      )
      .option('--reason <text>', 'why (kept with the grant)'),
  ).action(
    run(async (id: string | undefined, opts: ClientFlags & { reason?: string; subject?: string }) => {
      if (!id === !opts.subject) throw new Error('give a grant id or --subject USER (one of them)');
      if (opts.subject) {
        const res = await api(opts).revokeSubject(opts.subject, opts.reason);
        if (opts.json) return printJson(res);
        return printTable(GRANT_HEAD, res.revoked.map(grantRow));
      }
      printGrant(await api(opts).revokeGrant(id!, opts.reason), opts.json);
    }),
  );

  withClientOptions(
    grants
      .command('token')
      .description('issue a single-use enrollment token for a pending grant (shown once)')
      .argument('<id>')
      .option('--ttl <seconds>', 'lifetime, at most 900', '900'),
  ).action(
    run(async (id: string, opts: ClientFlags & { ttl: string }) => {
      const ttl = Number(opts.ttl);
      if (!Number.isInteger(ttl)) throw new Error('--ttl must be a whole number of seconds');
      const t = await api(opts).grantToken(id, ttl);
      if (opts.json) return printJson(t);
      process.stdout.write(`${t.token}\n`);
    }),
  );
};

export const registerPeers = (program: Command): void => {
  const peers = program.command('peers').description('clusters this one enrolled with (admin)');

  // --token is the enrollment token here, so this command takes Basic auth only.
  peers
    .command('enroll')
    .description('enroll with a peer manager using a token from its `grants token`')
    .argument('<url>', "the peer manager's URL")
    .requiredOption('--token <token>', 'the enrollment token (64 hex)')
    .option('--name <name>', "name of the peer record (default: the peer's cluster id)")
    .addOption(
      new Option('--endpoint <url>', 'this manager')
        .env('FLOTILLA_ENDPOINT')
        .default('http://127.0.0.1:8080'),
    )
    .addOption(new Option('--user <user>', 'Basic auth user').default('oscar'))
    .option('--password <password>', 'Basic auth password (env FLOTILLA_ADMIN_PASSWORD or OSCAR_PASSWORD)')
    .option('--json', 'print JSON')
    .action(
      run(async (url: string, opts: ClientFlags & { name?: string; token: string }) => {
        const c = clientFrom({ ...opts, token: undefined });
        const p = await peeringApi(c).enrollPeer({ url, token: opts.token, name: opts.name });
        if (opts.json) return printJson(p);
        process.stdout.write(
          `enrolled with ${p.cluster_id} as peer "${p.name}" (grant ${p.grant_id}, subject ${p.subject})\n`,
        );
      }),
    );

  withClientOptions(peers.command('list').description('list peers (stored state, no probe)')).action(
    run(async (opts: ClientFlags) => {
      const list = await api(opts).listPeers();
      if (opts.json) return printJson(list);
      printTable(PEER_HEAD, list.map(peerRow));
    }),
  );

  withClientOptions(
    peers
      .command('status')
      .description('probe peers over the peer channel')
      .argument('[name]', 'one peer (default: all)'),
  ).action(
    run(async (name: string | undefined, opts: ClientFlags) => {
      const a = api(opts);
      const names = name ? [name] : (await a.listPeers()).map((p) => p.name);
      const all = await Promise.all(names.map((n) => a.peerStatus(n)));
      if (opts.json) return printJson(name ? all[0] : all);
      printTable(PEER_HEAD, all.map(peerRow));
    }),
  );

  withClientOptions(peers.command('remove').description('remove a peer record').argument('<name>')).action(
    run(async (name: string, opts: ClientFlags) => {
      await api(opts).removePeer(name);
      if (opts.json) return printJson({ removed: name });
      process.stdout.write(`removed peer ${name}\n`);
    }),
  );

  // `federation status` belongs with the peer view; added to the existing `federation` command.
  const fed = program.commands.find((c) => c.name() === 'federation') ?? program.command('federation');
  withClientOptions(
    fed
      .command('status')
      .description('per peer: state, certificate expiry, last success and failure, circuit'),
  ).action(
    run(async (opts: ClientFlags) => {
      const a = api(opts);
      const all = await Promise.all((await a.listPeers()).map((p) => a.peerStatus(p.name)));
      if (opts.json) return printJson({ peers: all });
      if (all.length === 0) return void process.stdout.write('no peers\n');
      printTable(
        [...PEER_HEAD.slice(0, 5), 'CIRCUIT', 'LAST ERROR'],
        all.map((p) => [...peerRow(p).slice(0, 5), p.circuit ?? 'closed', p.last_error ?? '']),
      );
    }),
  );
};
