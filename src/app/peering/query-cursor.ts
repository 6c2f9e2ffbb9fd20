// Opaque query cursors: the position as base64url JSON and an HMAC-SHA256 over it and the
// query it belongs to (who asks, as which grant, what). A cursor edited, forged, or replayed
// by another subject or for another query fails the MAC and is refused with a 400.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FlotillaError } from '../../core/errors.ts';
import type { SecretBox, SettingsStore } from '../../core/ports.ts';

const KEY_SETTING = 'federation.cursor_key';
const REFUSED = 'cursor: not a cursor this manager gave for this query';

export class CursorSigner {
  constructor(private readonly key: Uint8Array) {}

  private mac(bind: string, payload: string): Buffer {
    return createHmac('sha256', this.key).update(bind).update('\n').update(payload).digest();
  }

  /** `bind` names the query (JSON of its caller and parameters); `position` any JSON value. */
  seal(bind: string, position: unknown): string {
    const payload = Buffer.from(JSON.stringify(position)).toString('base64url');
    return `${payload}.${this.mac(bind, payload).toString('base64url')}`;
  }

  /** The position, or VALIDATION_FAILED naming the cursor. */
  open(bind: string, cursor: unknown): unknown {
    if (typeof cursor !== 'string' || cursor.length > 8192)
      throw new FlotillaError('VALIDATION_FAILED', REFUSED);
    const [payload, tag, extra] = cursor.split('.');
    if (!payload || !tag || extra !== undefined) throw new FlotillaError('VALIDATION_FAILED', REFUSED);
    const want = this.mac(bind, payload);
    const got = Buffer.from(tag, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want))
      throw new FlotillaError('VALIDATION_FAILED', REFUSED);
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString());
    } catch {
      throw new FlotillaError('VALIDATION_FAILED', REFUSED);
    }
  }
}

/** The manager's cursor key: made once, sealed at rest, shared by replicas of one database. */
export const loadCursorKey = async (settings: SettingsStore, box: SecretBox): Promise<Uint8Array> => {
  const sealed = await settings.setSettingIfAbsent(KEY_SETTING, box.seal(randomBytes(32).toString('hex')));
  return Buffer.from(box.open(sealed), 'hex');
};
