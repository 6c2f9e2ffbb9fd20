// --peer-allow (FLOTILLA_PEER_ALLOW): the addresses and host names the manager may call as
// peers (#11.7). Default: any. Entries are CIDRs, single addresses, host names and
// `*.suffix` wildcards; a bad entry stops start-up naming it.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { allowsAddress, allowsHost, parsePeerAllow } from '../../src/core/federation/peer-allow.ts';

describe('peer allow list', () => {
  const allow = parsePeerAllow('10.0.0.0/8, 192.168.1.5 ,peers.example.org,*.grid.example fd00::/8');

  it('matches IPv4 and IPv6 addresses against CIDRs and single addresses', () => {
    expect(allowsAddress(allow, '10.2.3.4')).toBe(true);
    expect(allowsAddress(allow, '11.0.0.1')).toBe(false);
    expect(allowsAddress(allow, '192.168.1.5')).toBe(true);
    expect(allowsAddress(allow, '192.168.1.6')).toBe(false);
    expect(allowsAddress(allow, 'fd12:3456::1')).toBe(true);
    expect(allowsAddress(allow, '::1')).toBe(false);
    expect(allowsAddress(allow, '127.0.0.1')).toBe(false);
    // An IPv4-mapped IPv6 address is its IPv4 address.
    expect(allowsAddress(allow, '::ffff:10.1.1.1')).toBe(true);
    expect(allowsAddress(allow, '::ffff:127.0.0.1')).toBe(false);
  });

  it('matches host names exactly (case-insensitively) and by *.suffix', () => {
    expect(allowsHost(allow, 'peers.example.org')).toBe(true);
    expect(allowsHost(allow, 'PEERS.Example.org')).toBe(true);
    expect(allowsHost(allow, 'a.b.grid.example')).toBe(true);
    expect(allowsHost(allow, 'grid.example')).toBe(false);
    expect(allowsHost(allow, 'evil-peers.example.org')).toBe(false);
    expect(allowsHost(allow, 'localhost')).toBe(false);
  });

  it('refuses bad entries, naming them', () => {
    for (const bad of ['10.0.0.0/33', '300.1.1.1', 'fd00::/129', 'http://peer', 'a b/c', '*']) {
      expect(() => parsePeerAllow(bad), bad).toThrow(bad.split(' ')[0] === 'a' ? 'b/c' : bad);
    }
  });
});

describe('--peer-allow in the configuration', () => {
  it('is unset (any address) by default, read from the flag or FLOTILLA_PEER_ALLOW', () => {
    expect(loadConfig({}, {}).peerAllow).toBeUndefined();
    expect(loadConfig({ peerAllow: '10.0.0.0/8,peer.example.org' } as never, {}).peerAllow).toEqual([
      '10.0.0.0/8',
      'peer.example.org',
    ]);
    expect(loadConfig({}, { FLOTILLA_PEER_ALLOW: '127.0.0.1/32 ::1' }).peerAllow).toEqual([
      '127.0.0.1/32',
      '::1',
    ]);
  });

  it('stops start-up on a bad entry, naming the flag and the entry', () => {
    expect(() => loadConfig({}, { FLOTILLA_PEER_ALLOW: '10.0.0.0/40' })).toThrow(ConfigError);
    expect(() => loadConfig({}, { FLOTILLA_PEER_ALLOW: '10.0.0.0/40' })).toThrow(
      /--peer-allow \(FLOTILLA_PEER_ALLOW\).*10\.0\.0\.0\/40/,
    );
  });
});
