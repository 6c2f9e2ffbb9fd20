// The job sandbox, checked from inside: a script tries to read the manager's data dir (keys,
// database), another job's work dir, a world-readable file in the host's /tmp and the
// manager's own environment, and to write to the system dirs. Bubblewrap is required here:
// without it this file fails (and says how to install it) instead of skipping.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProcessExecutor,
  DEFAULT_UID_RANGE,
  type ProcessExecutor,
} from '../../src/adapters/executor-process/index.ts';
import type { ExecutionRequest, ExecutionResult } from '../../src/core/ports.ts';

/** A root manager gives each job a uid of its own from this range. */
const { first: FIRST_UID, last: LAST_UID } = DEFAULT_UID_RANGE;
const isJobUid = (uid: number) => uid >= FIRST_UID && uid <= LAST_UID;
const isRoot = process.getuid?.() === 0;

/** Strings that must never show up in what the script prints. */
const SECRETS = {
  key: 'fake-private-key-7d1e0c',
  database: 'fake-database-row-a93b42',
  otherJob: 'other-job-result-51c0f8',
  publicTmp: 'host-tmp-file-9e27aa',
  managerEnv: 'manager-env-secret-c4d7e1',
};

interface Host {
  dataDir: string;
  keyFile: string;
  dbFile: string;
  workRoot: string;
  otherJobDir: string;
  otherJobFile: string;
  publicDir: string;
  publicFile: string;
}

/** The manager's data dir (0700, as the manager creates it), another job's dir, a public /tmp file. */
async function createHost(): Promise<Host> {
  const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-data-'));
  await chmod(dataDir, 0o700);
  await mkdir(join(dataDir, 'keys'));
  // World-readable files on purpose: only the sandbox, not the files' modes, keeps them out.
  const keyFile = join(dataDir, 'keys', 'server.key');
  await writeFile(keyFile, `-----BEGIN PRIVATE KEY-----\n${SECRETS.key}\n`, { mode: 0o644 });
  const dbFile = join(dataDir, 'flotilla.db');
  await writeFile(dbFile, `SQLite format 3\0${SECRETS.database}`, { mode: 0o644 });

  const workRoot = await mkdtemp(join(tmpdir(), 'flotilla-iso-work-'));
  const otherJobDir = join(workRoot, 'job-other-running-job');
  // World-readable on purpose: only the mount namespace keeps the script out.
  await mkdir(join(otherJobDir, 'output'), { recursive: true, mode: 0o755 });
  await chmod(otherJobDir, 0o755);
  const otherJobFile = join(otherJobDir, 'output', 'result.txt');
  await writeFile(otherJobFile, SECRETS.otherJob, { mode: 0o644 });

  const publicDir = await mkdtemp(join(tmpdir(), 'flotilla-public-'));
  await chmod(publicDir, 0o755);
  const publicFile = join(publicDir, 'readme.txt');
  await writeFile(publicFile, SECRETS.publicTmp, { mode: 0o644 });
  return { dataDir, keyFile, dbFile, workRoot, otherJobDir, otherJobFile, publicDir, publicFile };
}

/** A script that tries everything it should not be able to do, and one thing it should. */
function intruderScript(host: Host): string {
  const reads = [
    host.keyFile,
    host.dbFile,
    host.otherJobFile,
    host.publicFile,
    `/proc/${process.pid}/environ`,
    '/etc/shadow',
  ];
  const lists = [
    host.dataDir,
    join(host.dataDir, 'keys'),
    host.workRoot,
    host.otherJobDir,
    host.publicDir,
    '/tmp',
  ];
  return [
    'echo "UID=$(id -u)"',
    'echo "GID=$(id -g)"',
    'echo "GROUPS=$(id -G)"',
    ...reads.map((f) => `echo "== cat ${f}"; cat '${f}' 2>&1`),
    ...lists.map((d) => `echo "== ls ${d}"; ls -la '${d}' 2>&1`),
    'echo x > /usr/flotilla-probe 2>/dev/null && echo "WROTE=/usr"',
    'echo x > /usr/bin/flotilla-probe 2>/dev/null && echo "WROTE=/usr/bin"',
    'echo x > /etc/flotilla-probe 2>/dev/null && echo "WROTE=/etc"',
    'echo ok > /tmp/scratch 2>/dev/null && echo "TMP=writable"',
    'echo "WORK_DIR=$(pwd)"',
    'echo written > "$TMP_OUTPUT_DIR/written.txt" && echo "OUTPUT=writable"',
  ].join('\n');
}

function request(script: string): ExecutionRequest {
  return {
    jobId: randomUUID(),
    serviceName: 'intruder',
    script,
    event: '{}',
    env: {},
    timeoutMs: 20_000,
    cpuMillis: 1000,
    memoryBytes: 512 * 1024 ** 2,
  };
}

function field(stdout: string, name: string): string | undefined {
  return stdout.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1];
}

function assertNoSecrets(result: ExecutionResult): void {
  const seen = result.stdout + result.stderr;
  for (const [what, secret] of Object.entries(SECRETS)) {
    expect(seen, `the script read the ${what} secret`).not.toContain(secret);
  }
  // /etc/shadow's root line: "root:<hash>:<days>:..."
  expect(seen).not.toMatch(/^root:[^:\n]*:\d+:/m);
}

function requireBubblewrap(): void {
  const found = spawnSync('/bin/sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(
      'bubblewrap (bwrap) is not installed, so the job sandbox cannot be verified: ' +
        'run scripts/ensure-system-deps.sh as root (or apt-get install -y bubblewrap)',
    );
  }
}

describe('process executor isolation: bubblewrap', () => {
  let host: Host;
  let executor: ProcessExecutor;
  let result: ExecutionResult;
  let workDirStat: { uid: number; mode: number };

  beforeAll(async () => {
    requireBubblewrap();
    host = await createHost();
    executor = createProcessExecutor({ workRoot: host.workRoot, sandbox: 'bubblewrap' });
    process.env.FLOTILLA_FAKE_SECRET = SECRETS.managerEnv;
    result = await executor.run(request(intruderScript(host)));
    const info = await stat(field(result.stdout, 'WORK_DIR')!);
    workDirStat = { uid: info.uid, mode: info.mode & 0o777 };
  });

  afterAll(async () => {
    delete process.env.FLOTILLA_FAKE_SECRET;
    await result?.dispose();
    await executor?.close();
    if (host)
      for (const dir of [host.dataDir, host.workRoot, host.publicDir])
        await rm(dir, { recursive: true, force: true });
  });

  it('is what the executor reports', () => {
    expect(executor.isolation).toBe('bubblewrap');
    expect(executor.isolationNote).toMatch(/bubblewrap/);
  });

  it("cannot read or list the manager's data dir, other jobs, the host's /tmp or the manager's environment", () => {
    assertNoSecrets(result);
    // `ls -la` lines end with " <name>"; the script's own headers print full paths instead.
    const listed = (name: string) => new RegExp(`[ \\t]${name}$`, 'm');
    for (const name of [
      'job-other-running-job',
      'server\\.key',
      'flotilla\\.db',
      'flotilla-data-\\w+',
      'flotilla-public-\\w+',
    ]) {
      expect(result.stdout).not.toMatch(listed(name));
    }
    expect(field(result.stdout, 'TMP')).toBe('writable'); // a private /tmp, not the host's
  });

  it('runs as an unprivileged user', () => {
    expect(Number(field(result.stdout, 'UID'))).not.toBe(0);
    expect(field(result.stdout, 'GROUPS')?.split(' ')).not.toContain('0');
    if (isRoot) {
      const uid = Number(field(result.stdout, 'UID'));
      expect(isJobUid(uid), `uid ${uid}`).toBe(true);
      expect(workDirStat.uid).toBe(uid);
    }
    expect(workDirStat.mode).toBe(0o700);
  });

  it('can write its own output dir and nothing of the system', () => {
    expect(field(result.stdout, 'OUTPUT')).toBe('writable');
    expect(result.outputs.map((o) => o.relPath)).toEqual(['written.txt']);
    expect(result.stdout).not.toMatch(/^WROTE=/m);
    for (const path of ['/usr/flotilla-probe', '/usr/bin/flotilla-probe', '/etc/flotilla-probe']) {
      expect(existsSync(path), path).toBe(false);
    }
  });

  it.runIf(isRoot)(
    'refuses a work root the sandbox user cannot reach, such as one inside the data dir',
    () => {
      expect(() =>
        createProcessExecutor({ workRoot: join(host.dataDir, 'work'), sandbox: 'bubblewrap' }),
      ).toThrow(/not reachable by the sandbox user/);
    },
  );

  it('leaves the other job and the data dir untouched', async () => {
    expect(await readFile(host.otherJobFile, 'utf8')).toBe(SECRETS.otherJob);
    expect(await readFile(host.keyFile, 'utf8')).toContain(SECRETS.key);
  });
});

// Without bubblewrap, a root manager falls back to a separate uid; its protection rests on
// the data dir being 0700. Only root can switch uid, so only then does this apply.
describe.runIf(isRoot)('process executor isolation: separate user (fallback)', () => {
  let host: Host;
  let executor: ProcessExecutor;
  let result: ExecutionResult;

  beforeAll(async () => {
    host = await createHost();
    executor = createProcessExecutor({ workRoot: host.workRoot, sandbox: 'user' });
    process.env.FLOTILLA_FAKE_SECRET = SECRETS.managerEnv;
    result = await executor.run(request(intruderScript(host)));
  });

  afterAll(async () => {
    delete process.env.FLOTILLA_FAKE_SECRET;
    await result?.dispose();
    await executor?.close();
    if (host)
      for (const dir of [host.dataDir, host.workRoot, host.publicDir])
        await rm(dir, { recursive: true, force: true });
  });

  it("runs as the sandbox user and cannot read the 0700 data dir or the manager's environment", async () => {
    expect(executor.isolation).toBe('separate-user');
    const uid = Number(field(result.stdout, 'UID'));
    expect(isJobUid(uid), `uid ${uid}`).toBe(true);
    const seen = result.stdout + result.stderr;
    expect(seen).not.toContain(SECRETS.key);
    expect(seen).not.toContain(SECRETS.database);
    expect(seen).not.toContain(SECRETS.managerEnv);
    expect(seen).not.toMatch(/^root:[^:\n]*:\d+:/m);
    expect(result.stdout).not.toMatch(/^WROTE=/m);
    expect(field(result.stdout, 'OUTPUT')).toBe('writable');
    const jobDirs = readdirSync(host.workRoot).filter(
      (name) => name.startsWith('job-') && join(host.workRoot, name) !== host.otherJobDir,
    );
    expect(jobDirs).toHaveLength(1);
    expect((await stat(join(host.workRoot, jobDirs[0]!, 'output'))).uid).toBe(uid);
  });
});
