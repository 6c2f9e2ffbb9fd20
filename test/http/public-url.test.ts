// A manager started with port 0 and no --public-url tells other clusters the port it really
// bound, not ":0" (workers of its federations and /system/config carry this address).
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager | undefined;
afterEach(async () => {
  await tm?.close();
  tm = undefined;
});

const publicUrlOf = async (m: TestManager) => {
  const res = await m.manager.http.inject({
    method: 'GET',
    url: '/system/config',
    headers: { authorization: basic() },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().config.public_url as string;
};

describe('public URL', () => {
  it('with port 0 it is the bound address once listening', async () => {
    tm = await startInProcess({ port: '0', host: '127.0.0.1' });
    const bound = await tm.manager.listen();
    const port = new URL(bound).port;
    expect(port).not.toBe('0');
    expect(await publicUrlOf(tm)).toBe(`http://127.0.0.1:${port}`);
    const health = await fetch(`${await publicUrlOf(tm)}/health`);
    expect(health.status).toBe(200);
  });

  it('an IPv6 host is written with brackets; a wildcard host becomes loopback', () => {
    const publicUrl = (host: string) => loadConfig({ host, port: '8080', dataDir: '/tmp/x' }, {}).publicUrl;
    expect(publicUrl('::1')).toBe('http://[::1]:8080');
    expect(publicUrl('::')).toBe('http://127.0.0.1:8080');
    expect(publicUrl('0.0.0.0')).toBe('http://127.0.0.1:8080');
    expect(publicUrl('10.1.2.3')).toBe('http://10.1.2.3:8080');
  });

  it('a configured --public-url is kept as given', async () => {
    tm = await startInProcess({ port: '0', publicUrl: 'https://flotilla.example.org/' });
    await tm.manager.listen();
    expect(await publicUrlOf(tm)).toBe('https://flotilla.example.org');
  });
});
