// The /ui dashboard's actions in real Chromium against one in-process manager with a real
// OIDC provider (admin, alice and bob): deploy from an FDL with its script file (and an API
// error shown inline), filter, edit, invoke (text, a file, a base64 answer decoded), jobs and
// logs, delete with confirmation; buckets (create, upload, download, visibility, delete); an
// OIDC user never sees another user's private service or bucket; no secret in the DOM; the
// CSP holds (no violation reported); keyboard use; a phone width.
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESOURCES, VERBS } from '../../src/core/trust/scope.ts';
import { launchChromium } from '../support/browser.ts';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';

const ALICE = 'alice@ui.example';
const BOB = 'bob@ui.example';
const SECRET = 'ui-secret-value-5512';

const FDL = `functions:
  oscar:
  - local:
      name: ui-hello
      image: alpine:3.20
      cpu: "0.5"
      memory: 256Mi
      script: hello.sh
      environment:
        secrets:
          API_KEY: ${SECRET}
`;
const SCRIPT = '#!/bin/sh\necho "ui says: $(cat "$INPUT_FILE_PATH")"\n';

let provider: OidcProviderFixture;
let tm: TestManager;
let base: string;
let browser: Browser;
const tokens: Record<string, string> = {};
const cspViolations: string[] = [];

const api = async (who: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: who === 'admin' ? basic() : `Bearer ${tokens[who]}`,
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
};

const newPage = async (width = 1280, height = 800): Promise<{ ctx: BrowserContext; page: Page }> => {
  const ctx = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => cspViolations.push(`page error: ${e.message}`));
  return { ctx, page };
};

const signIn = async (page: Page, who: 'admin' | string) => {
  await page.goto(`${base}/ui`);
  if (who === 'admin') await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  else await page.getByLabel('or access token').fill(tokens[who]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('#main:not([hidden])');
};

beforeAll(async () => {
  [provider, browser] = await Promise.all([startOidcProvider(), launchChromium()]);
  tm = await startInProcess({ oidcIssuers: provider.issuer, clusterId: 'ui-a' });
  base = await tm.manager.listen();
  for (const who of [ALICE, BOB]) tokens[who] = (await provider.mintTokens(who)).accessToken;
  // Alice's private service and bucket, made through the API: bob must never see them.
  const svc = await api(ALICE, 'POST', '/system/services', {
    name: 'alice-private',
    image: 'alpine',
    script: 'echo alice',
    visibility: 'private',
  });
  expect(svc.status, svc.text).toBe(201);
  const bucket = await api(ALICE, 'POST', '/system/buckets', { bucket_name: 'alice-bucket' });
  expect(bucket.status, bucket.text).toBe(201);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await tm?.close();
  await provider?.stop();
});

describe('services in the dashboard (admin)', () => {
  let ctx: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    ({ ctx, page } = await newPage());
    await signIn(page, 'admin');
  });
  afterAll(async () => ctx?.close());

  it('the table has the fixed columns and a "Filter by…" box', async () => {
    const headers = await page.locator('#services thead th').allTextContents();
    expect(headers.slice(0, 4)).toEqual(['Name', 'Image', 'CPU', 'Memory']);
    expect(headers).toEqual(expect.arrayContaining(['Federation', 'Sync']));
    expect(await page.getByPlaceholder(/^Filter by/).count()).toBe(1);
  });

  it('"New service": an FDL without an image is refused inline with the API\'s message', async () => {
    await page.getByRole('button', { name: 'New service' }).click();
    const dialog = page.getByRole('dialog', { name: 'New service' });
    await dialog.getByLabel(/FDL/).fill('name: ui-broken\nscript: "echo x"\n');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/^400: .*image/);
    expect(await dialog.isVisible()).toBe(true);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  it('"New service" from an FDL and its script file deploys it; the row shows it', async () => {
    await page.getByRole('button', { name: 'New service' }).click();
    const dialog = page.getByRole('dialog', { name: 'New service' });
    await dialog.getByLabel(/FDL/).fill(FDL);
    // Without the script file the FDL's "script: hello.sh" cannot be read: said inline.
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toContain('hello.sh');
    await dialog.getByLabel('Script file').setInputFiles({
      name: 'hello.sh',
      mimeType: 'text/x-sh',
      buffer: Buffer.from(SCRIPT),
    });
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const svcRow = page.locator('#services tr[data-service=ui-hello]');
    await expect
      .poll(() => svcRow.locator('td').allTextContents())
      .toEqual(expect.arrayContaining(['ui-hello', 'alpine:3.20', '0.5', '256Mi']));
    const stored = JSON.parse((await api('admin', 'GET', '/system/services/ui-hello')).text);
    expect(stored.script).toBe(SCRIPT);
  });

  it('"New service" by the form: name, image, cpu, memory and script; an empty name is the API\'s 400', async () => {
    await page.getByRole('button', { name: 'New service' }).click();
    const dialog = page.getByRole('dialog', { name: 'New service' });
    await dialog.getByLabel('form fields').check();
    await dialog.getByLabel('Image').fill('busybox');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/^400: .*name/);
    await dialog.getByLabel('Name').fill('ui-form');
    await dialog.getByLabel('Memory').fill('128Mi');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await expect
      .poll(() => page.locator('#services tr[data-service=ui-form] td').allTextContents())
      .toEqual(expect.arrayContaining(['ui-form', 'busybox', '128Mi']));
    expect((await api('admin', 'DELETE', '/system/services/ui-form')).status).toBe(204);
    await expect.poll(() => page.locator('#services tr[data-service=ui-form]').count()).toBe(0);
  });

  it('the filter keeps the rows whose name or image matches', async () => {
    const filter = page.getByPlaceholder(/^Filter by/);
    await filter.fill('alpine:3.20');
    await expect.poll(() => page.locator('#services tbody tr').count()).toBe(1);
    await filter.fill('no-such-service');
    await expect.poll(() => page.locator('#services tbody tr').count()).toBe(0);
    await filter.fill('');
    await expect.poll(() => page.locator('#services tbody tr').count()).toBe(2);
  });

  it('"Edit" changes the memory; the secret stays and never shows', async () => {
    await page.getByRole('button', { name: 'Edit ui-hello' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit ui-hello' });
    const text = await dialog.getByLabel(/FDL/).inputValue();
    expect(text).not.toContain(SECRET);
    const svc = JSON.parse(text);
    expect(svc.token).toBeUndefined();
    await dialog.getByLabel(/FDL/).fill(JSON.stringify({ ...svc, memory: '512Mi' }));
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await expect
      .poll(() => page.locator('#services tr[data-service=ui-hello] td:nth-child(4)').textContent())
      .toBe('512Mi');
  });

  it('"Invoke" with text runs synchronously and shows the answer in a <pre>', async () => {
    await page.getByRole('button', { name: 'Invoke ui-hello' }).click();
    const dialog = page.getByRole('dialog', { name: /^Invoke ui-hello/ });
    await dialog.getByLabel('Input text').fill('typed words');
    await dialog.getByRole('button', { name: 'Run', exact: true }).click();
    const pre = dialog.locator('pre');
    await expect.poll(() => pre.textContent(), { timeout: 20_000 }).toContain('ui says: typed words');
    // The secret reached the job's environment, not the page.
    expect(await page.content()).not.toContain(SECRET);
  });

  it('"Invoke" with a file; "Run asynchronously" queues a job whose log the page shows', async () => {
    const dialog = page.getByRole('dialog', { name: /^Invoke ui-hello/ });
    await dialog.getByLabel('or an input file').setInputFiles({
      name: 'in.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('from a file'),
    });
    await dialog.getByRole('button', { name: 'Run', exact: true }).click();
    await expect
      .poll(() => dialog.locator('pre').textContent(), { timeout: 20_000 })
      .toContain('from a file');
    await dialog.getByRole('button', { name: 'Run asynchronously' }).click();
    await expect.poll(() => dialog.getByRole('status').textContent()).toMatch(/^Job ui-hello-\S+ queued/);
    const jobId = /Job (\S+) queued/.exec((await dialog.getByRole('status').textContent()) ?? '')![1];
    await dialog.getByRole('button', { name: 'Close' }).click();
    const jobRow = page.locator(`#jobs tr[data-job="${jobId}"]`);
    await expect.poll(() => jobRow.textContent(), { timeout: 20_000 }).toMatch(/Succeeded.*here/);
    await page.getByRole('button', { name: `Log of job ${jobId}` }).click();
    await expect.poll(() => page.locator('#log').textContent()).toContain('ui says: from a file');
  });

  it('a base64 answer is decoded as the CLI does', async () => {
    const created = await api('admin', 'POST', '/system/services', {
      name: 'ui-b64',
      image: 'alpine',
      script: `#!/bin/sh\nprintf '%s' '${Buffer.from('decoded answer ✓').toString('base64')}'\n`,
    });
    expect(created.status, created.text).toBe(201);
    await page.getByRole('button', { name: 'Invoke ui-b64' }).click();
    const dialog = page.getByRole('dialog', { name: /^Invoke ui-b64/ });
    await dialog.getByRole('button', { name: 'Run', exact: true }).click();
    await expect
      .poll(() => dialog.locator('pre').textContent(), { timeout: 20_000 })
      .toBe('decoded answer ✓');
    expect(await dialog.getByRole('status').textContent()).toContain('decoded from base64');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  it('is usable from the keyboard: Tab to "New service", Enter opens it, Escape closes it', async () => {
    await page.getByPlaceholder(/^Filter by/).focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('New service');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'New service' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  it('"Delete" asks first; Cancel keeps the service, Delete removes it', async () => {
    await page.getByRole('button', { name: 'Delete ui-b64' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete service ui-b64?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect((await api('admin', 'GET', '/system/services/ui-b64')).status).toBe(200);
    await page.getByRole('button', { name: 'Delete ui-b64' }).click();
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await expect.poll(() => page.locator('#services tr[data-service=ui-b64]').count()).toBe(0);
    expect((await api('admin', 'GET', '/system/services/ui-b64')).status).toBe(404);
  });
});

describe('buckets in the dashboard (alice, an OIDC user)', () => {
  let ctx: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    ({ ctx, page } = await newPage());
    await signIn(page, ALICE);
    await page.getByRole('button', { name: 'Buckets' }).click();
  });
  afterAll(async () => ctx?.close());

  it('create: the list shows it with its visibility and owner', async () => {
    await page.getByLabel('Bucket name').fill('alice-ui');
    await page.getByRole('button', { name: 'Create bucket' }).click();
    const r = page.locator('#buckets tr[data-bucket=alice-ui] td');
    await expect
      .poll(() => r.allTextContents())
      .toEqual(expect.arrayContaining(['alice-ui', 'private', ALICE]));
    // A bad name: the API's message, inline.
    await page.getByLabel('Bucket name').fill('No_Such');
    await page.getByRole('button', { name: 'Create bucket' }).click();
    await expect.poll(() => page.locator('#bucket-error').textContent()).toMatch(/^400: bucket_name/);
  });

  it('upload a file (with progress), then download the same bytes', async () => {
    await page.getByRole('button', { name: 'Open alice-ui' }).click();
    const bytes = Buffer.alloc(300_000, 7);
    bytes.write('first bytes');
    await page.getByLabel('Upload a file').setInputFiles({
      name: 'data.bin',
      mimeType: 'application/octet-stream',
      buffer: bytes,
    });
    await expect.poll(() => page.locator('#upload-status').textContent()).toBe('Uploaded data.bin.');
    await expect.poll(() => page.locator('#objects tr[data-object="data.bin"]').count()).toBe(1);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download data.bin' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('data.bin');
    expect(Buffer.compare(await readFile((await download.path())!), bytes)).toBe(0);
  });

  it('change visibility to restricted for bob: the list says so, and bob can read it', async () => {
    await page.getByRole('button', { name: 'Visibility of alice-ui' }).click();
    const dialog = page.getByRole('dialog', { name: 'Visibility of alice-ui' });
    await dialog.getByLabel('Visibility').selectOption('restricted');
    await dialog.getByLabel(/Allowed users/).fill(BOB);
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const r = page.locator('#buckets tr[data-bucket=alice-ui] td');
    await expect.poll(() => r.allTextContents()).toEqual(expect.arrayContaining(['restricted', BOB]));
    expect((await api(BOB, 'GET', '/system/buckets/alice-ui')).status).toBe(200);
  });

  it('a hostile object key is shown as text: no element, no script runs', async () => {
    const key = '<img src=x onerror="window.__pwned=1">.txt';
    const up = await fetch(`${base}/system/buckets/alice-ui/object?key=${encodeURIComponent(key)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens[ALICE]}` },
      body: 'x',
    });
    expect(up.status).toBe(201);
    await expect.poll(() => page.locator('#objects tbody td').allTextContents()).toContain(key);
    expect(await page.locator('#objects img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    const del = await fetch(`${base}/system/buckets/alice-ui/object?key=${encodeURIComponent(key)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${tokens[ALICE]}` },
    });
    expect(del.status).toBe(204);
  });

  it('delete an object, then the bucket, each after a confirmation', async () => {
    await page.getByRole('button', { name: 'Delete object data.bin' }).click();
    await page
      .getByRole('dialog', { name: 'Delete data.bin?' })
      .getByRole('button', { name: 'Delete' })
      .click();
    await expect.poll(() => page.locator('#objects tr[data-object="data.bin"]').count()).toBe(0);
    await page.getByRole('button', { name: 'Delete bucket alice-ui' }).click();
    await page
      .getByRole('dialog', { name: 'Delete bucket alice-ui?' })
      .getByRole('button', { name: 'Delete' })
      .click();
    await expect.poll(() => page.locator('#buckets tr[data-bucket=alice-ui]').count()).toBe(0);
    expect((await api(ALICE, 'GET', '/system/buckets/alice-ui')).status).toBe(404);
  });
});

describe('what an OIDC user sees (bob)', () => {
  let ctx: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    ({ ctx, page } = await newPage());
    await signIn(page, BOB);
  });
  afterAll(async () => ctx?.close());

  it("never alice's private service nor her private bucket; no token in the DOM", async () => {
    await page.getByRole('button', { name: 'Services' }).click();
    await expect.poll(() => page.locator('#jobs-count').textContent()).toContain('jobs:');
    expect(await page.locator('#services tr[data-service=alice-private]').count()).toBe(0);
    await page.getByRole('button', { name: 'Buckets' }).click();
    await expect.poll(() => page.locator('#buckets thead').count()).toBe(1);
    await page.waitForTimeout(500);
    expect(await page.locator('#buckets tr[data-bucket=alice-bucket]').count()).toBe(0);
    const html = await page.content();
    for (const s of [tokens[BOB], tokens[ALICE], ADMIN_PASSWORD, 'alice-private', 'alice-bucket']) {
      expect(html).not.toContain(s);
    }
  });

  it("bob's own service: he deploys it; alice's list does not show it", async () => {
    await page.getByRole('button', { name: 'Services' }).click();
    await page.getByRole('button', { name: 'New service' }).click();
    const dialog = page.getByRole('dialog', { name: 'New service' });
    await dialog.getByLabel(/FDL/).fill('name: bob-svc\nimage: alpine\nscript: "echo bob"\n');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await expect.poll(() => page.locator('#services tr[data-service=bob-svc]').count()).toBe(1);
    const alices = JSON.parse((await api(ALICE, 'GET', '/system/services')).text).map(
      (s: { name: string }) => s.name,
    );
    expect(alices).not.toContain('bob-svc');
  });

  it('the object routes refuse him what the bucket grants refuse (403), a bad key (400)', async () => {
    await api(ALICE, 'POST', '/system/buckets', { bucket_name: 'alice-public', visibility: 'public' });
    const up = await fetch(`${base}/system/buckets/alice-public/object?key=x.txt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens[BOB]}` },
      body: 'not his',
    });
    expect(up.status).toBe(403);
    expect(await up.text()).toContain('is not authorised');
    const priv = await fetch(`${base}/system/buckets/alice-bucket/object?key=x.txt`, {
      headers: { authorization: `Bearer ${tokens[BOB]}` },
    });
    expect(priv.status).toBe(403);
    const bad = await fetch(`${base}/system/buckets/alice-public/object?key=../x`, {
      headers: { authorization: `Bearer ${tokens[ALICE]}` },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).message).toMatch(/^key:/);
    const none = await fetch(`${base}/system/buckets/alice-public/object`, {
      headers: { authorization: `Bearer ${tokens[ALICE]}` },
    });
    expect(none.status).toBe(400);
    // A declared length over the limit is refused before any byte is read.
    const huge = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}/system/buckets/alice-public/object?key=big.bin`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${tokens[ALICE]}`, 'content-length': String(6 * 1024 ** 3) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('x');
    });
    expect(huge).toBe(413);
  });
});

describe('grants and peers in the dashboard (admin only)', () => {
  let ctx: BrowserContext;
  let page: Page;
  let b: TestManager;
  let bUrl: string;
  beforeAll(async () => {
    // A second manager with a peer channel: ui-a enrolls with it, so ui-a has a peer.
    b = await startInProcess({ clusterId: 'ui-b', peerListen: '127.0.0.1:0' });
    bUrl = await b.manager.listen();
    const bAdmin = { authorization: basic(), 'content-type': 'application/json' };
    const grant = await fetch(`${bUrl}/system/grants`, {
      method: 'POST',
      headers: bAdmin,
      body: JSON.stringify({
        peer: 'ui-a',
        subject: ALICE,
        scope: { resources: ['services'], verbs: ['list'] },
      }),
    }).then((r) => r.json());
    const { token } = await fetch(`${bUrl}/system/grants/${grant.id}/token`, {
      method: 'POST',
      headers: bAdmin,
      body: '{}',
    }).then((r) => r.json());
    const peer = await api('admin', 'POST', '/system/peers', { url: bUrl, token, name: 'ui-b' });
    expect(peer.status, peer.text).toBe(201);
    ({ ctx, page } = await newPage());
    await signIn(page, 'admin');
  }, 60_000);
  afterAll(async () => {
    await ctx?.close();
    await b?.close();
  });

  it('"New grant": the scope editor has the closed lists; the API\'s 400 shows inline', async () => {
    await page.getByRole('button', { name: 'Grants', exact: true }).click();
    await page.getByRole('button', { name: 'New grant' }).click();
    const dialog = page.getByRole('dialog', { name: 'New grant' });
    const labels = async (legend: string) =>
      (await dialog.getByRole('group', { name: legend }).getByRole('checkbox').all()).length;
    expect(await labels('Resources')).toBe(RESOURCES.length);
    expect(await labels('Verbs')).toBe(VERBS.length);
    for (const r of RESOURCES)
      expect(await dialog.getByRole('checkbox', { name: r, exact: true }).count()).toBe(1);
    for (const v of VERBS)
      expect(await dialog.getByRole('checkbox', { name: v, exact: true }).count()).toBe(1);
    await dialog.getByLabel('Peer name').fill('ui-peer');
    await dialog.getByLabel('Subject').fill(BOB);
    // No resource ticked: the API refuses the scope, and says so in the dialog.
    await dialog.getByRole('checkbox', { name: 'list', exact: true }).check();
    await dialog.getByRole('button', { name: 'Create grant' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toMatch(/^400: .*scope\.resources/);
    expect(await dialog.isVisible()).toBe(true);
  });

  it('a grant created with a scope is listed with its scope summary, then revoked with confirmation', async () => {
    const dialog = page.getByRole('dialog', { name: 'New grant' });
    await dialog.getByRole('checkbox', { name: 'services', exact: true }).check();
    await dialog.getByRole('checkbox', { name: 'jobs', exact: true }).check();
    await dialog.getByRole('checkbox', { name: 'delegate', exact: true }).check();
    await dialog.getByLabel('Max rows per query').fill('50');
    await dialog.getByLabel('Max CPU').fill('2');
    await dialog.getByLabel('Rate per minute').fill('120');
    await dialog.getByRole('button', { name: 'Create grant' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const grants = JSON.parse((await api('admin', 'GET', '/system/grants')).text);
    const g = grants.find((x: { peer_name: string }) => x.peer_name === 'ui-peer');
    expect(g.scope).toMatchObject({
      resources: ['services', 'jobs'],
      verbs: ['list', 'delegate'],
      max_rows_per_query: 50,
      max_cpu: '2',
      rate_per_minute: 120,
    });
    const tr = page.locator(`#grants tr[data-grant="${g.id}"]`);
    await expect
      .poll(() => tr.locator('td').allTextContents())
      .toEqual(
        expect.arrayContaining([
          g.id,
          'ui-peer',
          BOB,
          'pending',
          'services, jobs · list, delegate · ≤ 50 rows · ≤ 2 cpu · 120/min',
        ]),
      );
    await tr.getByRole('button', { name: `Revoke ${g.id}` }).click();
    const confirm = page.getByRole('dialog', { name: `Revoke grant ${g.id}?` });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect(JSON.parse((await api('admin', 'GET', `/system/grants/${g.id}`)).text).status).toBe('pending');
    await tr.getByRole('button', { name: `Revoke ${g.id}` }).click();
    await confirm.getByRole('button', { name: 'Revoke' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await expect.poll(() => tr.locator('td:nth-child(4)').textContent()).toBe('revoked');
    expect(await tr.getByRole('button', { name: /^Revoke/ }).count()).toBe(0);
    expect(JSON.parse((await api('admin', 'GET', `/system/grants/${g.id}`)).text).status).toBe('revoked');
  });

  it('an enrollment token is shown once and is gone from the DOM when the dialog closes (keyboard)', async () => {
    const made = await api('admin', 'POST', '/system/grants', {
      peer: 'ui-token',
      subject: BOB,
      scope: { resources: ['services'], verbs: ['list'] },
    });
    const g = JSON.parse(made.text);
    const issue = page.getByRole('button', { name: `Issue a token for ${g.id}` });
    await issue.waitFor();
    // Focus and Enter in one locator call: a refresh that re-renders the table between the
    // two would otherwise leave the focus on a button no longer in the page.
    await issue.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Enrollment token' });
    const value = dialog.locator('#token-value');
    await expect.poll(() => value.textContent()).toMatch(/^[0-9a-f]{64}$/);
    const token = (await value.textContent()) as string;
    expect(await page.content()).toContain(token);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await page.content()).not.toContain(token);
    expect(
      await page.evaluate(() => document.body.textContent + JSON.stringify(sessionStorage)),
    ).not.toContain(token);
  });

  it('Peers lists the enrolled peer with its state and removes it after confirmation; no key in the DOM', async () => {
    await page.getByRole('button', { name: 'Peers', exact: true }).click();
    const tr = page.locator('#peers tr[data-peer="ui-b"]');
    await expect
      .poll(() => tr.locator('td').allTextContents())
      .toEqual(expect.arrayContaining(['ui-b', 'ui-b', bUrl, 'active']));
    expect(await page.content()).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    await tr.getByRole('button', { name: 'Remove peer ui-b' }).click();
    const confirm = page.getByRole('dialog', { name: 'Remove peer ui-b?' });
    await confirm.getByRole('button', { name: 'Remove' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await expect.poll(() => tr.count()).toBe(0);
    expect(JSON.parse((await api('admin', 'GET', '/system/peers')).text)).toEqual([]);
  });

  it('an OIDC user has no Peers or Grants page and no grant data reaches the page', async () => {
    const { ctx: bobCtx, page: bobPage } = await newPage();
    await signIn(bobPage, BOB);
    // The admin probe runs before the first render: once the cluster line shows, it has answered.
    await expect.poll(() => bobPage.locator('#cluster').textContent()).toMatch(/^cluster ui-a/);
    expect((await api(BOB, 'GET', '/system/grants')).status).toBe(403);
    expect((await api(BOB, 'GET', '/system/peers')).status).toBe(403);
    expect(await bobPage.getByRole('button', { name: 'Grants', exact: true }).count()).toBe(0);
    expect(await bobPage.getByRole('button', { name: 'Peers', exact: true }).count()).toBe(0);
    // Even asked for the page directly (the last view of the tab), it shows none.
    await bobPage.evaluate(() => sessionStorage.setItem('flotilla-view', 'grants'));
    await bobPage.reload();
    await bobPage.waitForSelector('#main:not([hidden])');
    await expect.poll(() => bobPage.locator('#view-services').isVisible()).toBe(true);
    expect(await bobPage.locator('#grants tbody tr').count()).toBe(0);
    expect(await bobPage.content()).not.toContain('grt_');
    await bobCtx.close();
  });
});

describe('layout and policy', () => {
  it('at a phone width the services table scrolls inside its box, the page does not', async () => {
    const { ctx, page } = await newPage(390, 844);
    await signIn(page, 'admin');
    await expect.poll(() => page.locator('#services tbody tr').count()).toBeGreaterThan(0);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
    expect(await page.getByRole('button', { name: 'New service' }).isVisible()).toBe(true);
    await ctx.close();
  });

  it('the page ran with no CSP violation and no script error', () => {
    expect(cspViolations).toEqual([]);
  });

  it('POST /ui/fdl needs credentials and names a bad FDL', async () => {
    const anon = await fetch(`${base}/ui/fdl`, { method: 'POST', body: 'name: x' });
    expect(anon.status).toBe(401);
    const bad = await fetch(`${base}/ui/fdl`, {
      method: 'POST',
      headers: { authorization: basic(), 'content-type': 'application/yaml' },
      body: 'functions:\n  oscar: []\n',
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).message).toContain('functions.oscar');
    const notYaml = await fetch(`${base}/ui/fdl`, {
      method: 'POST',
      headers: { authorization: basic() },
      body: 'a: [unclosed',
    });
    expect(notYaml.status).toBe(400);
  });
});
