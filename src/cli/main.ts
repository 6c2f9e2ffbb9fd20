// The `flotilla` command line.
import { Command } from 'commander';
import { readBuildInfo } from '../main/build-info.ts';
import { registerApply } from './commands/apply.ts';
import { registerCluster } from './commands/cluster.ts';
import { registerDemo } from './commands/demo.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerFederation } from './commands/federation.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerMigrateTier } from './commands/migrate-tier.ts';
import { registerGrants, registerPeers } from './commands/peering.ts';
import { registerServices } from './commands/services.ts';
import { registerStatus } from './commands/status.ts';
import { registerStorage } from './commands/storage.ts';
import { registerUp } from './commands/up.ts';

const program = new Command('flotilla')
  .description('Flotilla: an OSCAR-compatible serverless manager that federates services across clusters')
  .version(readBuildInfo().version)
  .showHelpAfterError();

registerUp(program);
registerApply(program);
registerServices(program);
registerJobs(program);
registerMigrateTier(registerStorage(program));
registerFederation(program);
registerGrants(program);
registerPeers(program);
registerStatus(program);
registerCluster(program);
registerDemo(program);
registerDoctor(program);

await program.parseAsync(process.argv);
