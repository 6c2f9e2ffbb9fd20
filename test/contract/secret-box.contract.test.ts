// SecretBox contract: one suite, run against every adapter (today the AES-256-GCM box, with a
// key given in configuration and with the key file it makes in a data dir).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox, loadSecretKey } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { SecretBox } from '../../src/core/ports.ts';

interface Adapter {
  name: string;
  /** Two boxes over one key (two replicas sharing FLOTILLA_SECRET_KEY) and one over another. */
  open(): Promise<{ box: SecretBox; sameKey: SecretBox; otherKey: SecretBox }>;
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flotilla-secret-box-'));
});
afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const adapters: Adapter[] = [
  {
    name: 'aes-gcm box, key from configuration',
    async open() {
      const key = randomBytes(32).toString('hex');
      return {
        box: createSecretBox(await loadSecretKey(key, dataDir)),
        sameKey: createSecretBox(await loadSecretKey(key, dataDir)),
        otherKey: createSecretBox(randomBytes(32)),
      };
    },
  },
  {
    name: 'aes-gcm box, key file in the data dir',
    async open() {
      const dir = await mkdtemp(join(dataDir, 'keyfile-'));
      return {
        box: createSecretBox(await loadSecretKey(undefined, dir)),
        sameKey: createSecretBox(await loadSecretKey(undefined, dir)),
        otherKey: createSecretBox(await loadSecretKey(undefined, await mkdtemp(join(dataDir, 'other-')))),
      };
    },
  },
];

for (const adapter of adapters) {
  describe(`SecretBox contract: ${adapter.name}`, () => {
    it('opens what it sealed, and so does a box over the same key', async () => {
      const { box, sameKey } = await adapter.open();
      for (const plain of ['rt-1', '', 'ünïcödé ✓ and a\nnewline', 'x'.repeat(64 * 1024)]) {
        const sealed = box.seal(plain);
        expect(box.open(sealed)).toBe(plain);
        expect(sameKey.open(sealed)).toBe(plain);
      }
    });

    it('never shows the plain text, and seals the same text differently each time', async () => {
      const { box } = await adapter.open();
      const plain = 'the-refresh-token-0123456789';
      const a = box.seal(plain);
      const b = box.seal(plain);
      expect(a).not.toContain(plain);
      expect(a).not.toBe(b);
      // Sealed values travel in JSON rows and definitions: one line of printable text.
      expect(a).toMatch(/^[\x21-\x7e]+$/);
    });

    it('refuses a value sealed under another key, without echoing it', async () => {
      const { box, otherKey } = await adapter.open();
      const sealed = otherKey.seal('secret-from-elsewhere');
      const err = (() => {
        try {
          box.open(sealed);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(FlotillaError);
      expect((err as FlotillaError).code).toBe('INTERNAL');
      expect((err as Error).message).not.toContain(sealed);
      expect((err as Error).message).not.toContain('secret-from-elsewhere');
    });

    it('refuses an altered or malformed value', async () => {
      const { box } = await adapter.open();
      const sealed = box.seal('hello');
      // A character in the middle: every bit of it is data (the last one may carry only
      // padding bits, which decode to the same bytes).
      const mid = Math.floor(sealed.length / 2);
      const altered = `${sealed.slice(0, mid)}${sealed[mid] === 'A' ? 'B' : 'A'}${sealed.slice(mid + 1)}`;
      for (const bad of [altered, 'not sealed', '', 'v1:x']) {
        expect(() => box.open(bad), JSON.stringify(bad)).toThrow(FlotillaError);
      }
    });
  });
}

describe('aes-gcm box: the key file', () => {
  it('is made once (mode 0600) and read back on the next start', async () => {
    const dir = await mkdtemp(join(dataDir, 'once-'));
    const first = await loadSecretKey(undefined, dir);
    const file = join(dir, 'secret.key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await loadSecretKey(undefined, dir)).equals(first)).toBe(true);
    expect((await readFile(file, 'utf8')).trim()).toBe(first.toString('hex'));
  });

  it('takes a configured key as hex or base64', async () => {
    const key = randomBytes(32);
    expect((await loadSecretKey(key.toString('hex'), dataDir)).equals(key)).toBe(true);
    expect((await loadSecretKey(key.toString('base64'), dataDir)).equals(key)).toBe(true);
  });
});
