// Issue #11 at the API: a service variable or secret that hijacks the loader, libc, a shell or
// an interpreter (LD_PRELOAD, GCONV_PATH, BASH_ENV, …) is refused with a 400 naming it, on
// create and on update; ordinary variables are kept (the executor drops them too, for
// services stored before this check: test/unit/job-sandbox.test.ts). A job's declared memory
// reaches the executor through the job runner; /system/info and the flags name the sandbox.
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { authorization: basic(), ...opts.headers } });
const create = (body: object) =>
  call({ method: 'POST', url: '/system/services', payload: { image: 'alpine', ...body } });
const update = (body: object) =>
  call({ method: 'PUT', url: '/system/services', payload: { image: 'alpine', ...body } });

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
      image: 'alpine',
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

describe('the job sandbox through the manager', () => {
  const alloc = `perl -e '$x = "x" x (192 * 1024 * 1024); print "ALLOCATED=", length($x), "\\n"'`;
  const runWith = async (name: string, memory: string) => {
    const made = await create({ name, script: alloc, cpu: '0.5', memory });
    expect(made.statusCode, made.body).toBe(201);
    const { token } = (await call({ method: 'GET', url: `/system/services/${name}` })).json();
    return tm.manager.http.inject({
      method: 'POST',
      url: `/run/${name}`,
      headers: { authorization: `Bearer ${token}` },
      payload: '',
    });
  };

  it("enforces the service's declared memory on a run (the job runner passes it)", async () => {
    const within = await runWith('alloc-within', '512Mi');
    expect(within.statusCode, within.body).toBe(200);
    expect(within.body).toContain(`ALLOCATED=${192 * 1024 ** 2}`);
    const over = await runWith('alloc-over', '64Mi');
    expect(over.body).not.toContain('ALLOCATED=');
    expect(over.statusCode).toBeGreaterThanOrEqual(400);
  });

  it('/system/info names the memory/cpu enforcement and the network in use', async () => {
    const info = (await call({ method: 'GET', url: '/system/info' })).json();
    expect(info.executor.note).toMatch(/memory and cpu: (cgroup v1|a cgroup v2|rlimits)/);
    expect(info.executor.note).toMatch(/network: (isolated|none|the host's)/);
  });

  it('takes --job-network and --job-uids, and refuses bad values naming the flag', () => {
    const base = { dataDir: '/tmp/flotilla-config-check' };
    const config = loadConfig({ ...base, jobNetwork: 'host', jobUids: '200000-200999' }, {});
    expect(config).toMatchObject({ jobNetwork: 'host', jobUids: { first: 200000, last: 200999 } });
    expect(loadConfig(base, { FLOTILLA_JOB_NETWORK: 'none' }).jobNetwork).toBe('none');
    expect(loadConfig(base, {}).jobNetwork).toBe('isolated');
    expect(() => loadConfig({ ...base, jobNetwork: 'bridge' }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, jobNetwork: 'bridge' }, {})).toThrow(/--job-network/);
    for (const bad of ['0-100', '5000-4000', '10-20x', '1000-4294967295']) {
      expect(() => loadConfig({ ...base, jobUids: bad }, {}), bad).toThrow(/--job-uids/);
    }
  });
});
