// Which peers the manager may call (`--peer-allow`): CIDRs, single addresses, host names
// and `*.suffix` wildcards. Pure: the HTTP adapter resolves names and asks these rules.

interface Cidr {
  v6: boolean;
  net: bigint;
  prefix: number;
}

export interface PeerAllow {
  /** The entries as written (for messages and the configuration). */
  readonly entries: readonly string[];
  readonly cidrs: readonly Cidr[];
  readonly hosts: ReadonlySet<string>;
  /** ".grid.example" for "*.grid.example". */
  readonly suffixes: readonly string[];
}

const HOST_RE = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;

const parseV4 = (s: string): bigint | undefined => {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let out = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out = (out << 8n) | BigInt(p);
  }
  return out;
};

const parseV6 = (s: string): bigint | undefined => {
  let text = s;
  // A trailing dotted IPv4 part ("::ffff:10.1.2.3") is two groups.
  if (text.includes('.')) {
    const i = text.lastIndexOf(':');
    const v4 = i >= 0 ? parseV4(text.slice(i + 1)) : undefined;
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, i + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 1 ? zeros !== 0 : zeros < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? zeros : 0).fill('0'), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
};

/** An address as a number; an IPv4-mapped IPv6 address is its IPv4 address. */
export const parseAddress = (raw: string): { v6: boolean; value: bigint } | undefined => {
  const s = raw.replace(/^\[|\]$/g, '');
  const v4 = parseV4(s);
  if (v4 !== undefined) return { v6: false, value: v4 };
  const v6 = s.includes(':') ? parseV6(s) : undefined;
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { v6: false, value: v6 & 0xffffffffn };
  return { v6: true, value: v6 };
};

const parseEntry = (entry: string): Cidr | { host: string } | { suffix: string } => {
  const slash = entry.indexOf('/');
  if (slash >= 0) {
    const addr = parseAddress(entry.slice(0, slash));
    const bitsText = entry.slice(slash + 1);
    const width = addr?.v6 ? 128 : 32;
    if (addr && /^\d{1,3}$/.test(bitsText) && Number(bitsText) <= width) {
      const prefix = Number(bitsText);
      const shift = BigInt(width - prefix);
      return { v6: addr.v6, net: (addr.value >> shift) << shift, prefix };
    }
  } else {
    const addr = parseAddress(entry);
    if (addr) return { v6: addr.v6, net: addr.value, prefix: addr.v6 ? 128 : 32 };
    if (entry.startsWith('*.') && HOST_RE.test(entry.slice(2)))
      return { suffix: entry.slice(1).toLowerCase() };
    // All digits and dots is a bad address, not a host name.
    if (HOST_RE.test(entry) && !/^[\d.]+$/.test(entry)) return { host: entry.toLowerCase() };
  }
  throw new Error(`"${entry}" is not a CIDR (10.0.0.0/8), an address, a host name or *.domain`);
};

/** Parses a comma- or space-separated list; throws an Error naming the first bad entry. */
export const parsePeerAllow = (list: string): PeerAllow => {
  const entries = list.split(/[\s,]+/).filter(Boolean);
  const cidrs: Cidr[] = [];
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  for (const e of entries) {
    const parsed = parseEntry(e);
    if ('host' in parsed) hosts.add(parsed.host);
    else if ('suffix' in parsed) suffixes.push(parsed.suffix);
    else cidrs.push(parsed);
  }
  return { entries, cidrs, hosts, suffixes };
};

/** The address is inside one of the listed CIDRs or addresses. */
export const allowsAddress = (allow: PeerAllow, address: string): boolean => {
  const a = parseAddress(address);
  if (!a) return false;
  return allow.cidrs.some((c) => {
    if (c.v6 !== a.v6) return false;
    const shift = BigInt((c.v6 ? 128 : 32) - c.prefix);
    return a.value >> shift === c.net >> shift;
  });
};

/** The host name is listed, or under a listed `*.suffix` (the suffix itself is not). */
export const allowsHost = (allow: PeerAllow, host: string): boolean => {
  const h = host.toLowerCase().replace(/\.$/, '');
  return allow.hosts.has(h) || allow.suffixes.some((s) => h.endsWith(s));
};
