// Keeping passwords out of what is printed: URLs without their user info, and texts (from
// servers, the OS, drivers) with every configured secret replaced.

/** A URL without user info (user and password), for messages and logs. */
export const safeUrl = (raw: string): string => {
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return stripUserInfo(raw);
  }
};

const stripUserInfo = (text: string): string => text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1');

/** Removes user info from URLs and every occurrence of the given secrets from a text. */
export const redact = (text: string, secrets: Array<string | undefined>): string => {
  let out = stripUserInfo(text);
  for (const s of secrets) {
    if (!s || s.length < 2) continue;
    out = out.split(s).join('***');
    const enc = encodeURIComponent(s);
    if (enc !== s) out = out.split(enc).join('***');
  }
  return out;
};

/** The secrets a URL carries (its password, raw and decoded), for redact(). */
export const urlSecrets = (raw: string | undefined): string[] => {
  if (!raw) return [];
  try {
    const u = new URL(raw);
    const out: string[] = [];
    if (u.password) out.push(u.password, safeDecode(u.password));
    const qp = u.searchParams.get('password');
    if (qp) out.push(qp);
    return out;
  } catch {
    return [];
  }
};

export const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};
