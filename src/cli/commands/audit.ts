// `flotilla audit list|verify` (admin): the audit trail of the local manager. verify pages
// through every row and recomputes the hash chain here, from what the manager returned.
import type { Command } from 'commander';
import { type AuditRowView, auditApi } from '../../../client/audit-api.ts';
import { type AuditOutcome, type AuditRow, ChainVerifier } from '../../core/audit/chain.ts';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

const HEAD = ['SEQ', 'AT', 'PEER', 'SUBJECT', 'VERB', 'RESOURCE', 'OUTCOME', 'BYTES', 'MS'];
const line = (r: AuditRowView) => [
  String(r.seq),
  r.at,
  r.peer ?? '-',
  r.subject ?? '-',
  r.verb,
  r.resource,
  r.outcome,
  String(r.bytes_out),
  String(r.latency_ms),
];

const toRow = (v: AuditRowView): AuditRow => ({
  seq: v.seq,
  at: new Date(v.at),
  grantId: v.grant_id,
  peer: v.peer,
  subject: v.subject,
  verb: v.verb,
  resource: v.resource,
  queryHash: v.query_hash,
  outcome: v.outcome as AuditOutcome,
  bytesOut: v.bytes_out,
  latencyMs: v.latency_ms,
  traceId: v.trace_id,
  hash: v.hash,
});

const REASONS = {
  'hash-mismatch': 'its hash does not match its fields and the row before it',
  'sequence-gap': 'rows before it are missing',
} as const;

export const registerAudit = (program: Command): void => {
  const audit = program
    .command('audit')
    .description('the audit trail of peer requests and federation changes (admin)');

  withClientOptions(
    audit
      .command('list')
      .description('list audit rows, oldest first')
      .option('--since <time>', 'ISO 8601 time, e.g. 2026-01-31T12:00:00Z')
      .option('--after <seq>', 'rows after this seq')
      .option('--limit <n>', 'at most this many rows (1-1000)', '100'),
  ).action(
    run(async (opts: ClientFlags & { since?: string; after?: string; limit: string }) => {
      const page = await auditApi(clientFrom(opts)).list({
        since: opts.since,
        after: opts.after === undefined ? undefined : Number(opts.after),
        limit: Number(opts.limit),
      });
      if (opts.json) return printJson(page);
      printTable(HEAD, page.rows.map(line));
    }),
  );

  withClientOptions(
    audit.command('verify').description('recompute the hash chain; exit 1 naming the first broken row'),
  ).action(
    run(async (opts: ClientFlags) => {
      const v = new ChainVerifier();
      for await (const r of auditApi(clientFrom(opts)).all()) if (!v.feed(toRow(r))) break;
      const res = v.result();
      if (opts.json) printJson(res);
      if (res.ok) {
        if (!opts.json) process.stdout.write(`audit chain OK: ${res.rows} rows verified\n`);
        return;
      }
      if (!opts.json)
        process.stdout.write(
          `audit chain BROKEN at row ${res.broken.seq} (${res.broken.at.toISOString()}): ${REASONS[res.broken.reason]}; ${res.rows} rows before it verify\n`,
        );
      process.exitCode = 1;
    }),
  );
};
