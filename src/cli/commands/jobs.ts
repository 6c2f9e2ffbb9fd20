// `flotilla job`, `run`, `jobs`, `logs`: invoking services and reading their jobs.
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { jobsApi } from '../../../client/api-client.ts';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

const readStdin = async (): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

/** OSCAR's clients send the input base64-encoded; the manager decodes it into the input file. */
const readInput = async (input: string | undefined): Promise<string> => {
  if (input === undefined) return '';
  const bytes =
    input === '-'
      ? await readStdin()
      : await readFile(input).catch((e: NodeJS.ErrnoException) => {
          throw new Error(`cannot read ${input}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        });
  return bytes.toString('base64');
};

const TERMINAL = new Set(['Succeeded', 'Failed']);

export const registerJobs = (program: Command): void => {
  withClientOptions(
    program
      .command('job')
      .description('invoke a service asynchronously; prints the job id')
      .argument('<service>')
      .option('-i, --input <file>', 'input file ("-" for stdin)'),
  ).action(
    run(async (service: string, opts: ClientFlags & { input?: string }) => {
      const res = await jobsApi(clientFrom(opts)).submit(service, await readInput(opts.input));
      if (opts.json) printJson(res);
      else process.stdout.write(`${res.job_id}\n`);
    }),
  );

  withClientOptions(
    program
      .command('run')
      .description('invoke a service synchronously and print its answer')
      .argument('<service>')
      .option('-i, --input <file>', 'input file ("-" for stdin)')
      .option('-o, --output <file>', 'write the base64-decoded answer (the output file) here'),
  ).action(
    run(async (service: string, opts: ClientFlags & { input?: string; output?: string }) => {
      const text = await jobsApi(clientFrom(opts)).run(service, await readInput(opts.input));
      if (opts.output) {
        await writeFile(opts.output, Buffer.from(text, 'base64'));
        if (!opts.json) process.stderr.write(`wrote ${opts.output}\n`);
      }
      if (opts.json) printJson({ output: text });
      else if (!opts.output) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }),
  );

  withClientOptions(
    program.command('jobs').description('list the jobs of a service').argument('<service>'),
  ).action(
    run(async (service: string, opts: ClientFlags) => {
      const api = jobsApi(clientFrom(opts));
      const all: Array<[string, Awaited<ReturnType<typeof api.list>>['jobs'][string]]> = [];
      let page: string | undefined;
      do {
        const res = await api.list(service, page);
        all.push(...Object.entries(res.jobs));
        page = res.next_page || undefined;
      } while (page);
      if (opts.json) return printJson(Object.fromEntries(all));
      printTable(
        ['JOB', 'STATUS', 'CREATED', 'FINISHED', 'WHERE', 'REASON', 'WHY THERE'],
        all.map(([id, j]) => [
          id,
          j.status,
          j.creation_time,
          j.finish_time ?? '',
          j.delegated_to ?? 'local',
          j.reason ?? '',
          // The manager's words for the delegation decision, as the dashboard shows them.
          j.delegation?.summary ?? '',
        ]),
      );
    }),
  );

  withClientOptions(
    program
      .command('logs')
      .description("print a job's log")
      .argument('<service>')
      .argument('<job>')
      .option('-f, --follow', 'keep printing until the job ends'),
  ).action(
    run(async (service: string, job: string, opts: ClientFlags & { follow?: boolean }) => {
      const api = jobsApi(clientFrom(opts));
      let shown = 0;
      for (;;) {
        const { text, status } = await api.log(service, job);
        if (text.length > shown) {
          process.stdout.write(text.slice(shown));
          shown = text.length;
        }
        if (!opts.follow || TERMINAL.has(status)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    }),
  );
};
