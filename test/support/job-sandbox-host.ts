// Host-side fixtures for the job sandbox tests: what a test needs from this machine (and a
// clear failure when it is missing), a preload library built with gcc, a TCP server on the
// host's loopback and one "outside": in a network namespace of its own behind a veth pair,
// reached through the host's routing as a server on another machine would be.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INSTALL = 'run scripts/ensure-system-deps.sh as root';

const has = (cmd: string): boolean =>
  spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;

/** Throws naming what is missing: these tests never skip. */
export function requireHost(
  what: Array<'root' | 'bwrap' | 'slirp4netns' | 'gcc' | 'ip' | 'perl' | 'cgroups'>,
): void {
  const missing: string[] = [];
  for (const w of what) {
    if (w === 'root' && process.getuid?.() !== 0)
      missing.push('root (a distinct uid per job, cgroups and network namespaces need it)');
    if (w === 'bwrap' && !has('bwrap')) missing.push(`bubblewrap (bwrap): ${INSTALL}`);
    if (w === 'slirp4netns' && !has('slirp4netns')) missing.push(`slirp4netns: ${INSTALL}`);
    if (w === 'gcc' && !has('gcc')) missing.push('gcc (to build the preload library)');
    if (w === 'ip' && !has('ip')) missing.push('ip (iproute2, to build the outside network)');
    if (w === 'perl' && !has('perl')) missing.push('perl (the jobs use it to allocate and connect)');
    if (w === 'cgroups' && !writableCgroups()) missing.push(`writable cgroups: ${cgroupHint()}`);
  }
  if (missing.length)
    throw new Error(`the job sandbox cannot be verified here; missing: ${missing.join('; ')}`);
}

/** v2 with the memory and cpu controllers, or v1 memory and cpu hierarchies we may write. */
function writableCgroups(): boolean {
  try {
    const v2 = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/);
    if (v2.includes('memory') && v2.includes('cpu')) return true;
  } catch {
    // not a v2 root
  }
  try {
    accessSync('/sys/fs/cgroup/memory/memory.limit_in_bytes', constants.R_OK);
    accessSync('/sys/fs/cgroup/memory', constants.W_OK);
    accessSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', constants.R_OK);
    accessSync('/sys/fs/cgroup/cpu', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const cgroupHint = () =>
  'neither cgroup v2 with memory and cpu controllers at /sys/fs/cgroup nor writable v1 memory and cpu hierarchies';

/**
 * A shared library whose constructor appends "<comm> uid=<uid>" to markerFile: whoever
 * loads it leaves a line there. World-readable, so only the environment decides who loads it.
 */
export async function buildPreloadLibrary(): Promise<{ library: string; markerFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-preload-'));
  await chmod(dir, 0o777);
  const markerFile = join(dir, 'loaded-by.txt');
  const source = join(dir, 'hijack.c');
  const library = join(dir, 'hijack.so');
  await writeFile(
    source,
    `#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void hijack(void) {
  char comm[64] = {0}, line[160];
  int c = open("/proc/self/comm", O_RDONLY);
  if (c >= 0) { ssize_t n = read(c, comm, sizeof comm - 1); if (n > 0 && comm[n - 1] == '\\n') comm[n - 1] = 0; close(c); }
  int f = open(${JSON.stringify(markerFile)}, O_WRONLY | O_APPEND | O_CREAT, 0666);
  if (f < 0) return;
  int len = snprintf(line, sizeof line, "%s uid=%d\\n", comm, (int)getuid());
  if (write(f, line, (size_t)len) < 0) {}
  close(f);
}
`,
  );
  const cc = spawnSync('gcc', ['-shared', '-fPIC', '-O2', '-o', library, source], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`gcc could not build the preload library: ${cc.stderr}`);
  await chmod(library, 0o755);
  return { library, markerFile };
}

export interface TokenServer {
  host: string;
  port: number;
  /** What the server writes to every connection. */
  token: string;
  close(): Promise<void>;
}

/** A TCP server on the host's loopback (127.0.0.1 or ::1) that greets with a token. */
export async function startLoopbackServer(host: '127.0.0.1' | '::1'): Promise<TokenServer> {
  const token = `loopback-${randomBytes(6).toString('hex')}`;
  const server: Server = createServer((socket) => socket.end(`${token}\n`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    host,
    port: address.port,
    token,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const ip = (args: string[]): void => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
};

/**
 * A server "outside": in its own network namespace, on a veth pair routed from the host
 * (198.18.0.0/15 is reserved for such tests). A job reaches it only through the host's
 * routing, the way it would reach any other machine; nothing about it is loopback.
 */
export async function startOutsideServer(): Promise<TokenServer> {
  const tag = randomBytes(3).toString('hex');
  const ns = `flt-out-${tag}`;
  const hostIf = `flto${tag}`;
  const nsIf = `flti${tag}`;
  const octet = 1 + (randomBytes(1)[0]! % 250);
  const [hostAddr, serverAddr] = [`198.18.${octet}.1`, `198.18.${octet}.2`];
  const token = `outside-${randomBytes(6).toString('hex')}`;
  ip(['netns', 'add', ns]);
  let server: ChildProcess | undefined;
  try {
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns]);
    ip(['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    ip(['link', 'set', hostIf, 'up']);
    ip(['-n', ns, 'addr', 'add', `${serverAddr}/30`, 'dev', nsIf]);
    ip(['-n', ns, 'link', 'set', nsIf, 'up']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    const code = `const s=require('net').createServer(c=>c.end(${JSON.stringify(`${token}\n`)}));s.listen(0,${JSON.stringify(serverAddr)},()=>console.log(s.address().port));`;
    server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      server!.once('exit', (c) => reject(new Error(`outside server exited (${c})`)));
      server!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    });
    return {
      host: serverAddr,
      port,
      token,
      async close() {
        server?.kill('SIGKILL');
        spawnSync('ip', ['netns', 'del', ns]);
      },
    };
  } catch (e) {
    server?.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    throw e;
  }
}

/** A job script line that connects to host:port with perl and prints what it read, or why not. */
export function connectLine(label: string, host: string, port: number): string {
  const peer = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return `perl -MIO::Socket::IP -e '$s = IO::Socket::IP->new(PeerAddr => "${peer}", Timeout => 3) or do { print "${label}=unreachable ($@)\\n"; exit 0 }; my $l = <$s>; chomp $l; print "${label}=$l\\n"'`;
}
