// A separately started S3-compatible server: s3rver in its own `node` process with its own
// temp dir, as the other tiers reach an external object store. Stops when the test process
// goes away (it exits when its stdin closes).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ExternalS3 {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  stop(): Promise<void>;
}

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

// CommonJS run with `node -e`; keys come through the environment, not argv (visible in ps).
const CHILD_SCRIPT = `
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
const { S3_DIR, S3_ACCESS_KEY, S3_SECRET_KEY } = process.env;
DUMMY_ACCOUNT.createKeyPair(S3_ACCESS_KEY, S3_SECRET_KEY);
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: S3_DIR, silent: true, vhostBuckets: false });
server.run().then(
  ({ port }) => process.stdout.write(JSON.stringify({ port }) + '\\n'),
  (err) => { console.error(err); process.exit(1); },
);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

export async function startS3ServerProcess(): Promise<ExternalS3> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-s3-'));
  const accessKey = randomBytes(10).toString('hex').toUpperCase();
  const secretKey = randomBytes(30).toString('base64url');
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT], {
    cwd: REPO_ROOT,
    env: { ...process.env, S3_DIR: dir, S3_ACCESS_KEY: accessKey, S3_SECRET_KEY: secretKey },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const port = await readPort(child);
    return {
      endpoint: `http://127.0.0.1:${port}`,
      accessKey,
      secretKey,
      stop: async () => {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

const readPort = (child: ChildProcess): Promise<number> =>
  new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error('s3rver process did not start within 20 s')), 20_000);
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      lines.close();
      fn();
    };
    lines.once('line', (line) => settle(() => resolve((JSON.parse(line) as { port: number }).port)));
    child.once('exit', (code) => settle(() => reject(new Error(`s3rver process exited with code ${code}`))));
  });

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
