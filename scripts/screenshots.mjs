#!/usr/bin/env node
// Regenerates the dashboard screenshots in docs/screenshots/: starts two managers (alpha and
// beta, fresh data dirs on free loopback ports), deploys a few services (one federated with
// beta), a bucket with an object and some jobs, then photographs each view in Debian's
// Chromium (playwright-core; never a downloaded browser). Usage: node scripts/screenshots.mjs
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = new URL('..', import.meta.url).pathname;
const OUT = join(ROOT, 'docs', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
const PASSWORD = 'screenshots-admin-pw';

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const started = [];
const startManager = async (id, extra = []) => {
  const port = await freePort();
  const peerPort = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), `flotilla-shots-${id}-`));
  const log = join(dataDir, 'manager.log');
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/flotilla.mjs'),
      'up',
      '--port',
      String(port),
      '--cluster-id',
      id,
      '--data-dir',
      join(dataDir, 'data'),
      '--admin-password',
      PASSWORD,
      '--peer-listen',
      `127.0.0.1:${peerPort}`,
      '--log-level',
      'warn',
      ...extra,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = createWriteStream(log);
  proc.stdout.pipe(out);
  proc.stderr.pipe(out);
  const m = { id, url: `http://127.0.0.1:${port}`, dataDir, proc };
  started.push(m);
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`manager ${id} exited (${proc.exitCode}); see ${log}`);
    try {
      if ((await fetch(`${m.url}/health`)).ok) return m;
    } catch {}
    if (i > 600) throw new Error(`manager ${id} did not start in 150 s; see ${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

const stopAll = async () => {
  for (const m of started) {
    if (m.proc.exitCode === null) {
      m.proc.kill('SIGTERM');
      await new Promise((r) => (m.proc.exitCode !== null ? r() : m.proc.once('exit', r)));
    }
    await rm(m.dataDir, { recursive: true, force: true });
  }
};

const AUTH = `Basic ${Buffer.from(`oscar:${PASSWORD}`).toString('base64')}`;
const call = async (base, method, path, body, type = 'application/json') => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: AUTH, 'content-type': type },
    body:
      body === undefined
        ? undefined
        : typeof body === 'string' || body instanceof Uint8Array
          ? body
          : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
};

const main = async () => {
  await mkdir(OUT, { recursive: true });
  // alpha has 1 cpu, so a 2-cpu poems job is delegated to beta (the Jobs table says why).
  const [alpha, beta] = await Promise.all([startManager('alpha', ['--cpus', '1']), startManager('beta')]);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const a = alpha.url;
    const script = await readFile(join(ROOT, 'examples/hello/script.sh'), 'utf8');
    await call(a, 'POST', '/system/services', {
      name: 'hello',
      image: 'alpine',
      cpu: '0.5',
      memory: '256Mi',
      script,
      environment: { variables: { GREETING: 'Hello' } },
    });
    await call(a, 'POST', '/system/services', {
      name: 'echo',
      image: 'ghcr.io/grycap/alpine',
      cpu: '0.1',
      memory: '64Mi',
      script: '#!/bin/sh\ncat "$INPUT_FILE_PATH"\n',
    });
    await call(a, 'POST', '/system/services', {
      name: 'poems',
      image: 'ghcr.io/grycap/alpine',
      cpu: '2',
      memory: '64Mi',
      script: '#!/bin/sh\ncat "$INPUT_FILE_PATH"\n',
      clusters: { beta: { endpoint: beta.url, auth_user: 'oscar', auth_password: PASSWORD } },
      federation: {
        topology: 'star',
        delegation: 'static',
        members: [{ type: 'oscar', cluster_id: 'beta' }],
      },
    });
    // A poems job, sent to beta at intake once the status cache knows beta (before the
    // peering below: beta's grant for alpha does not cover the admin's services).
    for (let i = 0; i < 40; i++) {
      const status = await call(a, 'GET', '/system/federation/poems');
      if (status.members?.some((m) => m.cluster_id === 'beta' && m.sync?.state === 'synced')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 3000)); // one status poll of beta
    const sent = await call(a, 'POST', '/job/poems', Buffer.from('a poem').toString('base64'), 'text/plain');
    for (let i = 0; ; i++) {
      const job = (await call(a, 'GET', '/system/logs/poems')).jobs[sent.job_id];
      if (job?.status === 'Succeeded') break;
      if (i > 120 || job?.status === 'Failed')
        throw new Error(`the poems job did not succeed: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    for (const words of ['a first job', 'a second job']) {
      await call(a, 'POST', '/job/echo', Buffer.from(words).toString('base64'), 'text/plain');
    }
    await call(a, 'POST', '/system/buckets', { bucket_name: 'photos', visibility: 'public' });
    await call(
      a,
      'PUT',
      '/system/buckets/photos/object?key=cat.jpg',
      new Uint8Array(48_213),
      'application/octet-stream',
    );
    await call(
      a,
      'PUT',
      '/system/buckets/photos/object?key=notes/readme.txt',
      'some notes',
      'application/octet-stream',
    );

    // Peering: alpha enrolls with beta (a grant and a token on beta), and grants beta a scope.
    const toAlpha = await call(beta.url, 'POST', '/system/grants', {
      peer: 'alpha',
      subject: 'alice@example.org',
      scope: { resources: ['services', 'jobs', 'status'], verbs: ['list', 'get', 'delegate'], max_cpu: '4' },
    });
    const { token } = await call(beta.url, 'POST', `/system/grants/${toAlpha.id}/token`, {});
    await call(a, 'POST', '/system/peers', { url: beta.url, token, name: 'beta' });
    await call(a, 'POST', '/system/grants', {
      peer: 'beta',
      subject: 'bob@example.org',
      scope: { resources: ['services', 'jobs'], verbs: ['list', 'replicate'], max_rows_per_query: 200 },
    });
    const old = await call(a, 'POST', '/system/grants', {
      peer: 'gamma',
      subject: 'carol@example.org',
      scope: { resources: ['buckets'], verbs: ['list', 'get'], rate_per_minute: 60 },
    });
    await call(a, 'POST', `/system/grants/${old.id}/revoke`, { reason: 'gamma left' });

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${a}/ui`);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('#services tr[data-service=poems] [data-member=beta]');
    await page.locator('#services tr[data-service=poems]').click();
    await page.waitForSelector('#jobs tbody tr .status-Succeeded', { timeout: 60_000 });
    await page.locator('#jobs tbody tr').first().click();
    await page.waitForFunction(() => document.getElementById('log').textContent.length > 0);
    await page.screenshot({ path: join(OUT, 'services.png'), fullPage: true });

    await page.getByRole('button', { name: 'New service' }).click();
    await page
      .getByRole('dialog')
      .getByLabel(/FDL/)
      .fill(await readFile(join(ROOT, 'examples/hello/fdl.yaml'), 'utf8'));
    await page.screenshot({ path: join(OUT, 'new-service.png') });
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Invoke echo' }).click();
    const invoke = page.getByRole('dialog', { name: /^Invoke echo/ });
    await invoke.getByLabel('Input text').fill('Hello from the dashboard');
    await invoke.getByRole('button', { name: 'Run', exact: true }).click();
    await invoke.locator('pre:not([hidden])').waitFor();
    await page.screenshot({ path: join(OUT, 'invoke.png') });
    await invoke.getByRole('button', { name: 'Close' }).click();

    await page.getByRole('button', { name: 'Buckets' }).click();
    await page.getByRole('button', { name: 'Open photos' }).click();
    await page.waitForSelector('#objects tr[data-object="cat.jpg"]');
    await page.screenshot({ path: join(OUT, 'buckets.png'), fullPage: true });

    await page.getByRole('button', { name: 'Federation' }).click();
    await page.waitForSelector('section[data-graph=poems] g.node[data-cluster=beta]');
    await page.screenshot({ path: join(OUT, 'federation.png'), fullPage: true });

    await page.getByRole('button', { name: 'Peers', exact: true }).click();
    await page.waitForSelector('#peers tr[data-peer=beta]');
    await page.screenshot({ path: join(OUT, 'peers.png'), fullPage: true });

    await page.getByRole('button', { name: 'Grants', exact: true }).click();
    await page.waitForSelector('#grants tbody tr:nth-child(2)');
    await page.screenshot({ path: join(OUT, 'grants.png'), fullPage: true });
    await page.getByRole('button', { name: 'New grant' }).click();
    const grant = page.getByRole('dialog', { name: 'New grant' });
    await grant.getByLabel('Peer name').fill('delta');
    await grant.getByLabel('Subject').fill('dave@example.org');
    for (const c of ['services', 'jobs', 'list', 'get', 'delegate'])
      await grant.getByRole('checkbox', { name: c, exact: true }).check();
    await grant.getByLabel('Max CPU').fill('8');
    await page.screenshot({ path: join(OUT, 'new-grant.png') });
    await grant.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Services' }).click();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForSelector('#services tr[data-service=hello]');
    await page.screenshot({ path: join(OUT, 'phone.png'), fullPage: true });
    console.log(`screenshots written to ${OUT}`);
  } finally {
    await browser.close();
  }
};

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(stopAll);
