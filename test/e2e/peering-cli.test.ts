// The peering CLI end to end: `grants create|token|list|show|revoke`, `peers enroll|list|
// status|remove` and `federation status`, against two real managers over real mTLS. The
// commands run in this process (a child per command costs ~10 s on the shared machine); one
// real `flotilla` child checks that the commands are registered in the binary.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerFederation } from '../../src/cli/commands/federation.ts';
import { registerGrants, registerPeers } from '../../src/cli/commands/peering.ts';
import { runCli } from '../support/cli.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';

let a: TestManager;
let b: TestManager;
let aUrl: string;
let bUrl: string;
let dir: string;

/** Runs `flotilla ARGS` in this process, capturing its output and exit code. */
const cli = async (args: string[], password: string = ADMIN_PASSWORD) => {
  const program = new Command('flotilla').exitOverride();
  registerFederation(program);
  registerGrants(program);
  registerPeers(program);
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((s: string) => {
    stdout += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    stderr += s;
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code = 0;
  try {
    await program.parseAsync([...args, ...(args.includes('--help') ? [] : ['--password', password])], {
      from: 'user',
    });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = (e as { exitCode?: number }).exitCode ?? 1;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
};

beforeAll(async () => {
  b = await startInProcess({ clusterId: 'bravo', peerListen: '127.0.0.1:0' });
  a = await startInProcess({ clusterId: 'alpha', peerListen: '127.0.0.1:0' });
  bUrl = await b.manager.listen();
  aUrl = await a.manager.listen();
  dir = await mkdtemp(join(tmpdir(), 'flotilla-peering-cli-'));
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('peering CLI', () => {
  it('registers the commands in the flotilla binary', async () => {
    const r = await runCli(['peers', 'enroll', '--help'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--token <token>');
  }, 90_000);

  it('documents every command with --help', async () => {
    for (const cmd of [
      ['grants', 'create'],
      ['grants', 'list'],
      ['grants', 'show'],
      ['grants', 'revoke'],
      ['grants', 'token'],
      ['peers', 'enroll'],
      ['peers', 'list'],
      ['peers', 'status'],
      ['peers', 'remove'],
      ['federation', 'status'],
    ]) {
      const r = await cli([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toContain('--json');
    }
  });

  it('creates a grant, enrolls with its token, probes, revokes, and sees the peer revoked', async () => {
    const scopeFile = join(dir, 'scope.json');
    await writeFile(scopeFile, JSON.stringify({ resources: ['services'], verbs: ['list', 'get'] }));
    const created = await cli([
      'grants',
      'create',
      '--peer',
      'alpha',
      '--subject',
      'alice',
      '--scope',
      scopeFile,
      '--endpoint',
      bUrl,
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const grant = created.json();
    expect(Object.keys(grant)[0]).toBe('id');
    expect(grant.status).toBe('pending');

    const human = await cli(['grants', 'list', '--status', 'pending', '--endpoint', bUrl]);
    expect(human.stdout).toContain(grant.id);

    const tok = await cli(['grants', 'token', grant.id, '--ttl', '300', '--endpoint', bUrl]);
    expect(tok.code, tok.stderr).toBe(0);
    const token = tok.stdout.trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);

    const enrolled = await cli(['peers', 'enroll', bUrl, '--token', token, '--endpoint', aUrl, '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.json()).toMatchObject({ name: 'bravo', state: 'active', grant_id: grant.id });
    expect(enrolled.stdout).not.toMatch(/PRIVATE KEY|key_sealed/);

    const replay = await cli([
      'peers',
      'enroll',
      bUrl,
      '--token',
      token,
      '--name',
      'again',
      '--endpoint',
      aUrl,
    ]);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toContain('GONE');

    const status = await cli(['peers', 'status', 'bravo', '--endpoint', aUrl, '--json']);
    expect(status.json()).toMatchObject({ state: 'active', capabilities: { resources: ['services'] } });
    const fed = await cli(['federation', 'status', '--endpoint', aUrl, '--json']);
    expect(fed.json().peers.map((p: { name: string; state: string }) => [p.name, p.state])).toEqual([
      ['bravo', 'active'],
    ]);

    const revoked = await cli([
      'grants',
      'revoke',
      grant.id,
      '--reason',
      'rotation',
      '--endpoint',
      bUrl,
      '--json',
    ]);
    expect(revoked.json()).toMatchObject({ status: 'revoked', revoke_reason: 'rotation' });
    const shown = await cli(['grants', 'show', grant.id, '--endpoint', bUrl, '--json']);
    expect(shown.json().status).toBe('revoked');
    const after = await cli(['peers', 'status', '--endpoint', aUrl, '--json']);
    expect(after.json().map((p: { state: string }) => p.state)).toEqual(['revoked']);

    const removed = await cli(['peers', 'remove', 'bravo', '--endpoint', aUrl]);
    expect(removed.code).toBe(0);
    const list = await cli(['peers', 'list', '--endpoint', aUrl, '--json']);
    expect(list.json()).toEqual([]);
  });

  it('revokes every grant of a deleted user with grants revoke --subject, and wants an id or --subject', async () => {
    const file = join(dir, 'scope-subject.json');
    await writeFile(file, JSON.stringify({ resources: ['services'], verbs: ['list'] }));
    const make = async (subject: string) =>
      (
        await cli([
          'grants',
          'create',
          '--peer',
          'alpha',
          '--subject',
          subject,
          '--scope',
          file,
          '--endpoint',
          bUrl,
          '--json',
        ])
      ).json().id as string;
    const dave = [await make('dave'), await make('dave')];
    const erin = await make('erin');
    const r = await cli(['grants', 'revoke', '--subject', 'dave', '--endpoint', bUrl, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(
      r
        .json()
        .revoked.map((g: { id: string }) => g.id)
        .sort(),
    ).toEqual([...dave].sort());
    expect(r.json().revoked.every((g: { status: string }) => g.status === 'revoked')).toBe(true);
    const kept = await cli(['grants', 'show', erin, '--endpoint', bUrl, '--json']);
    expect(kept.json().status).toBe('pending');
    const neither = await cli(['grants', 'revoke', '--endpoint', bUrl]);
    expect(neither.code).toBe(1);
    const both = await cli(['grants', 'revoke', erin, '--subject', 'erin', '--endpoint', bUrl]);
    expect(both.code).toBe(1);
  });

  it('exits 1 with the error code for a bad scope file and for a wrong password', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ resources: ['secrets'], verbs: ['list'] }));
    const r = await cli([
      'grants',
      'create',
      '--peer',
      'x',
      '--subject',
      's',
      '--scope',
      bad,
      '--endpoint',
      bUrl,
      '--json',
    ]);
    expect(r.code).toBe(1);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
    const wrong = await cli(['grants', 'list', '--endpoint', bUrl], 'nope');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('UNAUTHORIZED');
  });
});
