// The process executor's outputs: listed as regular files under output/ only, and opened only
// while each is still that file there. A symlink pointing outside never reaches the manager's
// reads, whether it was there when the job ended or swapped in after the listing.
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listOutputs } from '../../src/adapters/executor-process/work-dir.ts';
import type { ExecutionOutput } from '../../src/core/ports.ts';

const SECRET = 'host-secret-7f3a';

const read = async (output: ExecutionOutput): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of await output.open()) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
};

describe('process executor outputs', () => {
  let root: string;
  let workDir: string;
  let outputDir: string;
  let outside: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'flotilla-outputs-'));
    workDir = join(root, 'job-x');
    outputDir = join(workDir, 'output');
    outside = join(root, 'host');
    await mkdir(join(outputDir, 'a'), { recursive: true });
    await mkdir(join(outside, 'a'), { recursive: true });
    await writeFile(join(outside, 'secret.txt'), SECRET);
    await writeFile(join(outside, 'a', 'mid.txt'), SECRET);
    await writeFile(join(outputDir, 'top.txt'), 'top');
    await writeFile(join(outputDir, 'a', 'mid.txt'), 'mid');
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lists regular files with their size, mtime and mode, and opens them', async () => {
    await symlink(join(outside, 'secret.txt'), join(outputDir, 'leak'));
    const outputs = await listOutputs(outputDir);
    expect(outputs.map((o) => [o.relPath, o.size])).toEqual([
      ['a/mid.txt', 3],
      ['top.txt', 3],
    ]);
    expect(outputs[1]!.modifiedAt).toBeInstanceOf(Date);
    expect(outputs[1]!.mode & 0o170000).toBe(0o100000);
    expect(await Promise.all(outputs.map(read))).toEqual(['mid', 'top']);
  });

  it('refuses a listed file swapped for a symlink pointing outside', async () => {
    const [, top] = await listOutputs(outputDir);
    await rm(join(outputDir, 'top.txt'));
    await symlink(join(outside, 'secret.txt'), join(outputDir, 'top.txt'));
    await expect(top!.open()).rejects.toThrow(/top\.txt not opened: it is a symlink/);
  });

  it('refuses a file reached through a directory swapped for a symlink', async () => {
    const [mid] = await listOutputs(outputDir);
    await rm(join(outputDir, 'a'), { recursive: true });
    await symlink(join(outside, 'a'), join(outputDir, 'a'));
    await expect(mid!.open()).rejects.toThrow(/no longer inside the output dir/);
  });

  it('refuses a file whose output dir was swapped for a symlink, and lists nothing from one', async () => {
    const [, top] = await listOutputs(outputDir);
    await rename(outputDir, join(workDir, 'old'));
    await writeFile(join(outside, 'top.txt'), SECRET);
    await symlink(outside, outputDir);
    await expect(top!.open()).rejects.toThrow(/no longer inside the output dir/);
    expect(await listOutputs(outputDir)).toEqual([]);
  });

  it('refuses a listed file replaced by another one', async () => {
    const [, top] = await listOutputs(outputDir);
    // Moved aside rather than removed, so its inode number cannot be reused by the new one.
    await rename(join(outputDir, 'top.txt'), join(workDir, 'moved.txt'));
    await writeFile(join(outputDir, 'top.txt'), 'other');
    await expect(top!.open()).rejects.toThrow(/no longer the file the job left/);
  });
});
