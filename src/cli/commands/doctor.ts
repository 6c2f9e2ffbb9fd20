// `flotilla doctor [--json]`: reads the same flags and environment as `flotilla up`, runs
// every probe the tier needs and prints the tier and each service's health. Exit 0 when
// nothing is red, 1 on any red, 2 on a configuration error.
import { type Command, Option } from 'commander';
import { type Config, ConfigError, FLAGS, type FlagValues, loadConfig } from '../../config/config.ts';
import type { Probe, ProbeReport } from '../../core/tier.ts';
import { jobSandboxProbe, openTierTools } from '../../main/tier-tools.ts';

const optionName = (flag: string): string =>
  flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Adds every `flotilla up` setting (FLAGS) as an option, as `up` does. */
export const withConfigOptions = (cmd: Command): Command => {
  for (const spec of Object.values(FLAGS)) {
    const dflt = spec.default !== undefined ? ` (default ${spec.default})` : '';
    cmd.option(`${spec.flag} <value>`, `env ${spec.env.join(' or ')}${dflt}`);
  }
  return cmd;
};

/** The FLAGS values commander parsed, for loadConfig. */
export const configFlags = (opts: Record<string, unknown>): FlagValues => {
  const flags: FlagValues = {};
  for (const [key, spec] of Object.entries(FLAGS)) {
    const v = opts[optionName(spec.flag)];
    if (typeof v === 'string') flags[key as keyof typeof FLAGS] = v;
  }
  return flags;
};

const color = (level: Probe['level'], text: string): string => {
  if (!process.stdout.isTTY || process.env.NO_COLOR) return text;
  const code = level === 'green' ? 32 : level === 'yellow' ? 33 : 31;
  return `\x1b[${code}m${text}\x1b[0m`;
};

const where = (p: Probe): string => (p.port === null ? (p.path ?? p.host) : `${p.host}:${p.port}`);

export const printReport = (report: ProbeReport): void => {
  const rows = report.probes.map((p) => ({
    p,
    cells: [p.level, p.service, where(p), p.latency_ms === null ? '-' : `${p.latency_ms} ms`],
  }));
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r.cells[i].length), 0));
  const out: string[] = [`tier: ${report.tier}`];
  for (const { p, cells } of rows) {
    const padded = cells.map((c, i) => c.padEnd(widths[i])).join('  ');
    out.push(`  ${color(p.level, padded.slice(0, widths[0]))}${padded.slice(widths[0])}  ${p.message}`);
    if (p.remedy && p.level !== 'green') out.push(`  ${' '.repeat(widths[0])}  remedy: ${p.remedy}`);
  }
  const reds = report.probes.filter((p) => p.level === 'red').length;
  const yellows = report.probes.filter((p) => p.level === 'yellow').length;
  out.push(
    reds
      ? color('red', `${reds} red${yellows ? `, ${yellows} yellow` : ''}: flotilla up would refuse to start`)
      : yellows
        ? color('yellow', `${yellows} yellow: flotilla up starts, but see the remedies`)
        : color('green', 'all green'),
  );
  process.stdout.write(`${out.join('\n')}\n`);
};

export const registerDoctor = (program: Command): void => {
  const cmd = withConfigOptions(
    program
      .command('doctor')
      .description(
        'check what the storage tier needs (PostgreSQL, Valkey/Redis, S3, the data dir) and the job sandbox; exit 1 on any red',
      ),
  )
    .addOption(new Option('--timeout <seconds>', 'cap per probe').default('5'))
    .option('--json', 'print the report as JSON (see docs/doctor.md)');
  cmd.action(async (opts: Record<string, string | boolean | undefined>) => {
    const json = opts.json === true;
    let config: Config;
    try {
      config = loadConfig(configFlags(opts));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      if (json)
        process.stdout.write(`${JSON.stringify({ error: { code: 'CONFIG', message: e.message } })}\n`);
      else process.stderr.write(`flotilla doctor: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    const seconds = Number(opts.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 60) {
      process.stderr.write('flotilla doctor: --timeout must be a number of seconds from 0 to 60\n');
      process.exitCode = 2;
      return;
    }
    const report = await openTierTools(config).doctor({ timeoutMs: Math.round(seconds * 1000) });
    const sandbox = jobSandboxProbe(config);
    report.probes.push(sandbox);
    report.ok &&= sandbox.ok;
    if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printReport(report);
    process.exitCode = report.ok ? 0 : 1;
  });
};
