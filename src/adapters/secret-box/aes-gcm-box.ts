// Seals secrets at rest with AES-256-GCM. The key comes from FLOTILLA_SECRET_KEY, or from a
// key file generated in the data dir (0600) on first start. Sealed text: "v1:<iv>:<tag>:<data>".
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError } from '../../core/errors.ts';
import type { SecretBox } from '../../core/ports.ts';

const b64 = (b: Buffer) => b.toString('base64url');

export const createSecretBox = (key: Buffer): SecretBox => {
  if (key.length !== 32) throw new Error('secret key must be 32 bytes');
  return {
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `v1:${b64(iv)}:${b64(cipher.getAuthTag())}:${b64(data)}`;
    },
    open(sealed) {
      const [v, iv, tag, data] = sealed.split(':');
      if (v !== 'v1' || !iv || !tag || data === undefined)
        throw new FlotillaError('INTERNAL', 'sealed secret has an unknown format');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString(
          'utf8',
        );
      } catch {
        // Never echo the sealed text or the key.
        throw new FlotillaError(
          'INTERNAL',
          'a sealed secret could not be opened: wrong FLOTILLA_SECRET_KEY or corrupted data',
        );
      }
    },
  };
};

/** The key from configuration (hex or base64), else the data dir's key file, made on first start. */
export const loadSecretKey = async (configured: string | undefined, dataDir: string): Promise<Buffer> => {
  if (configured)
    return /^[0-9a-fA-F]{64}$/.test(configured)
      ? Buffer.from(configured, 'hex')
      : Buffer.from(configured, 'base64');
  const file = join(dataDir, 'secret.key');
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return Buffer.from(text, 'hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = randomBytes(32);
  // wx: two managers starting on one data dir must not overwrite each other's key.
  try {
    await writeFile(file, key.toString('hex'), { mode: 0o600, flag: 'wx' });
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
    throw e;
  }
};
