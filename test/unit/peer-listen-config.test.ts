// --peer-listen / FLOTILLA_PEER_LISTEN: default public port + 1, explicit HOST:PORT, off.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

const load = (flags: Record<string, string>, env: NodeJS.ProcessEnv = {}) =>
  loadConfig({ dataDir: '/tmp/flotilla-cfg-test', ...flags }, env).peerListen;

describe('--peer-listen', () => {
  it('defaults to the public port + 1 on the same host, not fatal when taken', () => {
    expect(load({ port: '9000', host: '0.0.0.0' })).toEqual({ host: '0.0.0.0', port: 9001, explicit: false });
    expect(load({ port: '0' })).toEqual({ host: '127.0.0.1', port: 0, explicit: false });
    expect(load({ port: '65535' })).toBeUndefined();
  });
  it('takes HOST:PORT (flag first, then the environment twin) and off', () => {
    expect(load({ peerListen: '127.0.0.2:7443' })).toEqual({ host: '127.0.0.2', port: 7443, explicit: true });
    expect(load({}, { FLOTILLA_PEER_LISTEN: '[::1]:7443' })).toEqual({
      host: '::1',
      port: 7443,
      explicit: true,
    });
    expect(load({ peerListen: 'off' }, { FLOTILLA_PEER_LISTEN: '127.0.0.1:1' })).toBeUndefined();
  });
  it('refuses anything else naming the flag and its twin', () => {
    for (const bad of ['7443', 'host:', 'h:99999', ':'])
      expect(() => load({ peerListen: bad }), bad).toThrow(ConfigError);
    expect(() => load({ peerListen: 'x' })).toThrow(/--peer-listen \(FLOTILLA_PEER_LISTEN\)/);
  });
});
