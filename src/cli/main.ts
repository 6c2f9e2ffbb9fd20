// The `flotilla` command line. Only the module of the command being run is loaded: each
// pulls in its own dependencies (`up` the whole manager, `apply` only the API client), so a
// short command starts fast and `up` holds nothing another command needed. Help, and a name
// not listed here, load them all.
import { Command } from 'commander';
import { readBuildInfo } from '../main/build-info.ts';

type Register = (program: Command) => unknown;

/** Top-level command names → their registration, in the order help lists them. */
const COMMANDS: Array<[names: string[], load: () => Promise<Register>]> = [
  [['up'], async () => (await import('./commands/up.ts')).registerUp],
  [['apply'], async () => (await import('./commands/apply.ts')).registerApply],
  [['services'], async () => (await import('./commands/services.ts')).registerServices],
  [['job', 'run', 'jobs', 'logs'], async () => (await import('./commands/jobs.ts')).registerJobs],
  [
    ['storage'],
    async () => {
      const [{ registerStorage }, { registerMigrateTier }] = await Promise.all([
        import('./commands/storage.ts'),
        import('./commands/migrate-tier.ts'),
      ]);
      return (program) => registerMigrateTier(registerStorage(program));
    },
  ],
  // `federation status` is registered with the peers (peering.ts), onto `federation`.
  [['federation'], async () => (await import('./commands/federation.ts')).registerFederation],
  [['grants'], async () => (await import('./commands/peering.ts')).registerGrants],
  [['peers', 'federation'], async () => (await import('./commands/peering.ts')).registerPeers],
  [['audit'], async () => (await import('./commands/audit.ts')).registerAudit],
  [['query'], async () => (await import('./commands/query.ts')).registerQuery],
  [['status'], async () => (await import('./commands/status.ts')).registerStatus],
  [['cluster'], async () => (await import('./commands/cluster.ts')).registerCluster],
  [['demo'], async () => (await import('./commands/demo.ts')).registerDemo],
  [['doctor'], async () => (await import('./commands/doctor.ts')).registerDoctor],
];

const program = new Command('flotilla')
  .description('Flotilla: an OSCAR-compatible serverless manager that federates services across clusters')
  .version(readBuildInfo().version)
  .showHelpAfterError();

const name = process.argv[2] ?? '';
const mine = COMMANDS.filter(([names]) => names.includes(name));
for (const [, load] of mine.length ? mine : COMMANDS) (await load())(program);

await program.parseAsync(process.argv);
