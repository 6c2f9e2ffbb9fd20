// The README's main command: `flotilla demo` starts three clusters, deploys a federated
// service, runs jobs, says where each ran and why, and finds every output in the origin's
// bucket. Run here with fewer jobs to keep the suite short.
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

describe('flotilla demo', () => {
  it('runs jobs across three clusters and collects every output in the origin bucket', async () => {
    const res = await runCli(['demo', '--jobs', '8'], { timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('starting 3 clusters on loopback');
    expect(res.stderr).toMatch(/beta: created/);
    expect(res.stderr).toMatch(/gamma: created/);
    const rows = res.stdout.split('\n').filter((l) => /^\d+\s+[0-9a-f]{8}\s+/.test(l));
    expect(rows).toHaveLength(8);
    for (const r of rows) expect(r).toMatch(/Succeeded\s+(alpha|beta|gamma)\s+\S/);
    // alpha has one cpu and each job takes one for a second: some jobs go elsewhere.
    expect(rows.some((r) => /\s(beta|gamma)\s/.test(r))).toBe(true);
    expect(res.stdout).toContain("outputs in alpha's bucket poems/out: 8 of 8");
    expect(res.stdout).toMatch(/processed by: poems(-beta|-gamma)?/);
  }, 300_000);
});
