// `flotilla services list|get|delete`.
import type { Command } from 'commander';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

export const registerServices = (program: Command): void => {
  const services = program.command('services').description('list, show and delete services');

  withClientOptions(services.command('list').description('list services')).action(
    run(async (opts: ClientFlags) => {
      const list = await clientFrom(opts).listServices();
      if (opts.json) return printJson(list);
      printTable(
        ['NAME', 'CPU', 'MEMORY', 'OWNER', 'VISIBILITY', 'FEDERATION'],
        list.map((s) => [
          s.name,
          String(s.cpu ?? ''),
          String(s.memory ?? ''),
          String(s.owner ?? ''),
          String(s.visibility ?? ''),
          String((s.federation as { topology?: string } | undefined)?.topology ?? '-'),
        ]),
      );
    }),
  );

  withClientOptions(services.command('get').description('show a service').argument('<name>')).action(
    run(async (name: string, opts: ClientFlags) => {
      const svc = await clientFrom(opts).getService(name);
      printJson(svc);
    }),
  );

  withClientOptions(
    services
      .command('delete')
      .description('delete a service (and, for a coordinator, its workers)')
      .argument('<name>')
      .option('--no-cascade', 'keep the workers of a federated service'),
  ).action(
    run(async (name: string, opts: ClientFlags & { cascade: boolean }) => {
      await clientFrom(opts).deleteService(name, { cascade: opts.cascade });
      if (opts.json) printJson({ deleted: name });
      else process.stdout.write(`deleted ${name}\n`);
    }),
  );
};
