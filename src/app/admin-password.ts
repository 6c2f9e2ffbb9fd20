// The admin password: given by configuration, or generated at first start, kept hashed in
// the store and printed once. Checks are constant-time.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { SettingsStore } from '../core/ports.ts';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;
const SETTING = 'admin_password_scrypt';

const hash = async (password: string, salt: Buffer): Promise<Buffer> => scryptAsync(password, salt, 32);

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();

export interface AdminPasswordCheck {
  verify(password: string): Promise<boolean>;
}

/**
 * Resolves the admin password. Returns the check, and `generated` (the clear password)
 * only on the start that created it, so the caller can print it once.
 */
export const resolveAdminPassword = async (
  configured: string | undefined,
  settings: SettingsStore,
): Promise<{ check: AdminPasswordCheck; generated?: string }> => {
  if (configured !== undefined) {
    const expected = sha(configured);
    return { check: { verify: async (pw) => timingSafeEqual(sha(pw), expected) } };
  }
  const candidate = randomBytes(18).toString('base64url');
  const salt = randomBytes(16);
  const record = `${salt.toString('hex')}:${(await hash(candidate, salt)).toString('hex')}`;
  const stored = await settings.setSettingIfAbsent(SETTING, record);
  const [saltHex, hashHex] = stored.split(':');
  const storedSalt = Buffer.from(saltHex, 'hex');
  const storedHash = Buffer.from(hashHex, 'hex');
  // scrypt is slow on purpose: remember the last password that passed, by digest.
  let lastGood: Buffer | undefined;
  const check: AdminPasswordCheck = {
    verify: async (pw) => {
      const digest = sha(pw);
      if (lastGood && timingSafeEqual(digest, lastGood)) return true;
      const ok = timingSafeEqual(await hash(pw, storedSalt), storedHash);
      if (ok) lastGood = digest;
      return ok;
    },
  };
  return { check, generated: stored === record ? candidate : undefined };
};
