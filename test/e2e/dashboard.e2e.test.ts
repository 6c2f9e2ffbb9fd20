// The /ui dashboard in real Chromium against two real managers: sign-in (refused and
// accepted), capacity, a federated service with its members' sync state, jobs with where
// they ran (one delegated), a job's log, sign-out — and no secret on the page.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobsApi } from '../../client/api-client.ts';
import { launchChromium } from '../support/browser.ts';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import { startDelegationClusters, waitJobsEnded } from '../support/delegation.ts';
import { clustersMap, createFederated, federatedService } from '../support/federation.ts';

const SECRET = 'dashboard-secret-value-31';

describe('dashboard (/ui) in Chromium', () => {
  let h: Harness;
  let a: ClusterProcess;
  let browser: Browser;
  let page: Page;
  const jobIds: { local: string; delegated: string } = { local: '', delegated: '' };

  beforeAll(async () => {
    [h, browser] = await Promise.all([
      startDelegationClusters([
        { id: 'a', args: ['--cpus', '1', '--memory', '2Gi'] },
        { id: 'b', args: ['--cpus', '4', '--memory', '4Gi'] },
        { id: 'c', args: ['--cpus', '2', '--memory', '2Gi'] },
      ]),
      launchChromium(),
    ]);
    a = h.get('a');
    const created = await createFederated(
      a,
      federatedService(
        'board',
        { topology: 'star', delegation: 'static', members: [{ type: 'oscar', cluster_id: 'b' }] },
        clustersMap(h.clusters),
        { environment: { secrets: { API_KEY: SECRET } }, script: '#!/bin/sh\necho "board says hi"\n' },
      ),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const mesh = await createFederated(
      a,
      federatedService(
        'mesh3',
        {
          topology: 'mesh',
          delegation: 'load-based',
          members: [
            { type: 'oscar', cluster_id: 'b' },
            { type: 'oscar', cluster_id: 'c' },
          ],
        },
        clustersMap(h.clusters),
      ),
    );
    expect(mesh.status, JSON.stringify(mesh.body)).toBe(201);
    const token = ((await a.client.getService('board')) as { token: string }).token;
    // One that fits here, one that fits only on b (2 cpus > a's 1): delegated at intake.
    const local = await jobsApi(a.client).submit('board', 'aGk=', token);
    jobIds.local = local.job_id;
    const big = { ...((await a.client.getService('board')) as Record<string, unknown>), cpu: '2' };
    await a.client.request('PUT', '/system/services', { body: big });
    // Wait until the status cache has seen b, so the big job is delegated, not queued.
    let delegated: { job_id: string; delegated_to: string | null } | undefined;
    for (let i = 0; i < 20 && !delegated?.delegated_to; i++) {
      if (i) await new Promise((r) => setTimeout(r, 500));
      delegated = await jobsApi(a.client).submit('board', 'aGk=', token);
    }
    expect(delegated?.delegated_to).toBe('b');
    jobIds.delegated = delegated!.job_id;
    await waitJobsEnded(a.client, 'board', [jobIds.local, jobIds.delegated], 60_000);
    page = await browser.newPage();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it("the listing carries the delegated job's decision, the local one's is null, no address or password of b in it", async () => {
    const { jobs } = await jobsApi(a.client).list('board');
    expect(jobs[jobIds.local].delegation).toBeNull();
    expect(jobs[jobIds.delegated].delegation).toMatchObject({
      trigger: 'intake',
      policy: 'static',
      cpu_millis: 2000,
      outcome: 'delegated',
      to: 'b',
      candidates: [{ cluster_id: 'b', service_name: 'board', cache: 'fits', tried: 'accepted' }],
    });
    const text = JSON.stringify(jobs[jobIds.delegated].delegation);
    const b = h.get('b');
    for (const leak of [b.url, new URL(b.url).port, b.adminPassword, SECRET])
      expect(text).not.toContain(leak);
  });

  it('refuses a wrong password with a message, and keeps the sign-in form', async () => {
    await page.goto(`${a.url}/ui`);
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toContain('Wrong user, password or token');
    expect(await page.isVisible('#main')).toBe(false);
  });

  it('shows capacity, the federated service with its members, and jobs with where they ran', async () => {
    await page.fill('input[name=password]', a.adminPassword);
    await page.click('button[type=submit]');
    await page.waitForSelector('#main:not([hidden])');
    expect(await page.isVisible('#login')).toBe(false);
    await expect.poll(() => page.textContent('#cluster')).toContain('cluster a');
    await expect.poll(() => page.locator('#nodes tbody tr').count()).toBeGreaterThan(0);
    // a was started with --cpus 1 and --memory 2Gi: free / total per node.
    expect(await page.textContent('#nodes tbody tr td:nth-child(2)')).toMatch(/^[\d.]+ \/ 1$/);
    expect(await page.textContent('#nodes tbody tr td:nth-child(3)')).toMatch(/ \/ 2\.0 GiB$/);

    const svcRow = page.locator('#services tr[data-service=board]');
    await expect.poll(() => svcRow.textContent()).toContain('star · static');
    await expect.poll(() => svcRow.locator('[data-member=b]').textContent()).toContain('b/board (synced)');

    await svcRow.click();
    const local = page.locator(`#jobs tr[data-job="${jobIds.local}"]`);
    const remote = page.locator(`#jobs tr[data-job="${jobIds.delegated}"]`);
    await expect.poll(() => local.textContent()).toMatch(/Succeeded.*here/);
    await expect.poll(() => remote.textContent()).toMatch(/Succeeded.*b \(delegated\)/);
    // Why, as recorded when it was sent (not guessed from today's policy): the "why" cell.
    expect(await local.locator('td:nth-child(4)').textContent()).toBe('');
    expect(await remote.locator('td:nth-child(4)').textContent()).toMatch(
      /^Delegated to b at intake: no local node had 2 cpu and \d+ [MG]iB free\. Policy static: b \(\d+\.\d cpu free\)\.$/,
    );

    await remote.click();
    await expect.poll(() => page.textContent('#log')).toContain('board says hi');
  });

  it('Federation: the service as an SVG graph, one node per cluster with its sync state, one edge per link', async () => {
    await page.getByRole('button', { name: 'Federation' }).click();
    const graph = page.locator('section[data-graph=board] svg');
    await expect.poll(() => graph.locator('g.node').count()).toBe(2);
    expect(await graph.getAttribute('aria-label')).toContain('2 clusters, topology star, delegation static');
    expect(await graph.locator('g.node[data-cluster=a]').getAttribute('data-state')).toBe('coordinator');
    await expect
      .poll(() => graph.locator('g.node[data-cluster=b]').getAttribute('data-state'))
      .toBe('synced');
    expect(await graph.locator('line.edge').count()).toBe(1);
    expect(await graph.locator('line.edge').getAttribute('data-edge')).toBe('a→b');
    // The delegated job of beforeAll went over it: the edge is coloured by that traffic.
    await expect
      .poll(async () => Number(await graph.locator('line.edge').getAttribute('data-jobs')))
      .toBeGreaterThanOrEqual(1);
    expect(await graph.locator('line.edge').getAttribute('class')).toBe('edge traffic-some');
    await page.getByRole('button', { name: 'Services' }).click();
  });

  it('a 3-cluster mesh: 3 nodes with their free cpu, 3 links; a killed member turns red within 30 s', async () => {
    await page.getByRole('button', { name: 'Federation' }).click();
    const graph = page.locator('section[data-graph=mesh3] svg');
    await expect.poll(() => graph.locator('g.node').count()).toBe(3);
    expect(await graph.locator('line.edge').count()).toBe(3);
    const c = graph.locator('g.node[data-cluster=c]');
    await expect.poll(() => c.getAttribute('data-state'), { timeout: 20_000 }).toBe('synced');
    await expect.poll(() => c.locator('.node-label').textContent(), { timeout: 20_000 }).toMatch(/cpu free$/);
    await h.get('c').kill();
    const killedAt = Date.now();
    await expect.poll(() => c.getAttribute('data-state'), { timeout: 30_000, interval: 500 }).toBe('offline');
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    expect(await graph.locator('g.node[data-cluster=b]').getAttribute('data-state')).toBe('synced');
    await page.getByRole('button', { name: 'Services' }).click();
    // The services table says so too.
    await expect
      .poll(() => page.locator('#services tr[data-service=mesh3] [data-member=c]').textContent())
      .toContain('(offline)');
    // A change made while c is down waits in the outbox: the count of what c has not got yet.
    const svc = (await a.client.getService('mesh3')) as Record<string, unknown>;
    const put = await a.client.send('PUT', '/system/services', { body: { ...svc, memory: '96Mi' } });
    expect(put.status, await put.text()).toBeLessThan(300);
    await expect
      .poll(() => page.locator('#services tr[data-service=mesh3] [data-member=c]').textContent(), {
        timeout: 15_000,
      })
      .toMatch(/\(offline, [1-9]\d* changes? pending\)/);
    expect(await page.locator('#services tr[data-service=mesh3] [data-member=b]').textContent()).not.toMatch(
      /pending\)/,
    );
  });

  it('puts no secret on the page: admin password, service token, secret values', async () => {
    const token = ((await a.client.getService('board')) as { token: string }).token;
    const html = await page.content();
    for (const s of [a.adminPassword, token, SECRET]) expect(html).not.toContain(s);
  });

  it('is served with a strict content security policy', async () => {
    const res = await fetch(`${a.url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  it('the API documentation at /docs renders under its own CSP', async () => {
    const res = await fetch(`${a.url}/docs/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain('script-src');
    const docs = await browser.newPage();
    const blocked: string[] = [];
    docs.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    await docs.goto(`${a.url}/docs`);
    await docs.waitForSelector('.swagger-ui .info .title');
    expect(await docs.textContent('.swagger-ui .info .title')).toContain('Flotilla API');
    expect(blocked, blocked.join('\n')).toEqual([]);
    await docs.close();
  });

  it('signs out back to the form, leaving nothing of the last view; a reload stays signed out', async () => {
    await page.click('#logout');
    expect(await page.isVisible('#login')).toBe(true);
    expect(await page.locator('#services tbody tr').count()).toBe(0);
    expect(await page.locator('#jobs tbody tr').count()).toBe(0);
    expect(await page.textContent('#log')).toBe('');
    await page.reload();
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.isVisible('#main')).toBe(false);
  });
});
