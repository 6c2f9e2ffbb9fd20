// scratch: idle cpu of N+1 managers before and after a mesh of N exists
import { ADMIN, basicHeader, startBenchManager, type BenchManager } from './lib.ts';
const N = Number(process.env.N ?? 32);
const managers: BenchManager[] = [];
for (let i = 0; i <= N; i += 4) {
  managers.push(...(await Promise.all(Array.from({ length: Math.min(4, N + 1 - i) }, (_, k) =>
    startBenchManager('postgres', { clusterId: i + k === 0 ? 'coord' : `m${i + k}` }, { runJobs: false })))));
}
const idle = async (label: string) => {
  await new Promise((r) => setTimeout(r, 3000));
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 10000));
  const c = process.cpuUsage(c0); const dt = performance.now() - t0;
  console.log(label, 'cpu ms per s:', ((c.user + c.system) / 1000 / (dt / 1000)).toFixed(1));
};
await idle('no federation');
const [coord, ...members] = managers;
const clusters = Object.fromEntries(managers.map((m) => [m.manager.config.clusterId, { endpoint: m.url, auth_user: 'oscar', auth_password: ADMIN }]));
const res = await fetch(`${coord.url}/system/services`, { method: 'POST', headers: { authorization: basicHeader, 'content-type': 'application/json' },
  body: JSON.stringify({ name: 'mesh', image: 'alpine', script: 'true', cpu: '0.1', clusters, federation: { topology: 'mesh', members: members.map((m) => ({ type: 'oscar', cluster_id: m.manager.config.clusterId, service_name: 'mesh-w' })) } }) });
console.log('create', res.status);
await idle('one mesh of N');
if (process.env.PROFILE) {
  const { profiled } = await import('./lib.ts');
  await profiled(process.env.PROFILE, () => new Promise((r) => setTimeout(r, 5000)));
}
await Promise.all(managers.map((m) => m.close()));
process.exit(0);
