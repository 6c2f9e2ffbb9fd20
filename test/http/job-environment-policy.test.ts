// Issue #11 item 4 at the API: a service variable or secret that hijacks the loader, libc, a
// shell or an interpreter (LD_PRELOAD, GCONV_PATH, BASH_ENV, …) is refused with a 400 naming
// it, on create and on update; ordinary variables are kept. The executor drops them too, for
// services stored before this check (test/unit/job-sandbox.test.ts).
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { authorization: basic(), ...opts.headers } });
const create = (body: object) => call({ method: 'POST', url: '/system/services', payload: body });
const update = (body: object) => call({ method: 'PUT', url: '/system/services', payload: body });

beforeAll(async () => {
  tm = await startInProcess();
});
afterAll(async () => {
  await tm?.close();
});

describe('service environment: the hijack list', () => {
  it.each([
    ['variables', 'LD_PRELOAD', '/tmp/evil.so'],
    ['variables', 'LD_LIBRARY_PATH', '/tmp'],
    ['variables', 'LD_AUDIT', '/tmp/evil.so'],
    ['variables', 'GCONV_PATH', '/tmp'],
    ['variables', 'GLIBC_TUNABLES', 'glibc.malloc.check=3'],
    ['variables', 'MALLOC_PERTURB_', '1'],
    ['variables', 'BASH_ENV', '/tmp/x.sh'],
    ['variables', 'ENV', '/tmp/x.sh'],
    ['variables', 'BASH_FUNC_ls%%', '() { id; }'],
    ['variables', 'PYTHONSTARTUP', '/tmp/x.py'],
    ['variables', 'PERL5OPT', '-Mevil'],
    ['variables', 'NODE_OPTIONS', '--require /tmp/x.js'],
    ['secrets', 'LD_PRELOAD', '/tmp/evil.so'],
    ['secrets', 'HOSTALIASES', '/tmp/hosts'],
  ])('refuses environment.%s.%s on create with a 400 naming it', async (where, name, value) => {
    const svc = `hijack-${where}-${name.toLowerCase().replace(/[^a-z0-9]/g, '')}`;
    const res = await create({ name: svc, script: 'env', environment: { [where]: { [name]: value } } });
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json();
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.message).toContain(name);
    expect(body.message).not.toContain(value); // values may be secrets
    expect((await call({ method: 'GET', url: `/system/services/${svc}` })).statusCode).toBe(404);
  });

  it('refuses one on update and keeps the stored service', async () => {
    const ok = await create({ name: 'later', script: 'env', environment: { variables: { A: '1' } } });
    expect(ok.statusCode, ok.body).toBe(201);
    const res = await update({
      name: 'later',
      script: 'env',
      environment: { variables: { LD_PRELOAD: '/x.so' } },
    });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().message).toContain('LD_PRELOAD');
    const got = (await call({ method: 'GET', url: '/system/services/later' })).json();
    expect(got.environment.variables).toEqual({ A: '1' });
  });

  it('keeps ordinary variables, module search paths included', async () => {
    const variables = {
      PATH: '/opt/bin:/usr/bin',
      PYTHONPATH: '/opt/lib',
      ld_preload: 'lower-case is not the loader',
      MY_LD_PRELOAD: 'x',
    };
    const res = await create({ name: 'ordinary', script: 'env', environment: { variables } });
    expect(res.statusCode, res.body).toBe(201);
    const got = (await call({ method: 'GET', url: '/system/services/ordinary' })).json();
    expect(got.environment.variables).toEqual(variables);
  });
});
