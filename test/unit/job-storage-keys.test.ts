// Whose keys a Kubernetes job pod gets for this cluster's store when it is an external S3 (no
// per-caller keys exist there): none by default; the configured ones only when the operator
// chose `--job-storage-keys manager`. Scoped keys on the embedded store: kube-executor-storage.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import type { SettingsStore } from '../../src/core/ports.ts';
import { openObjectStorage } from '../../src/main/object-storage.ts';

const flags = {
  dataDir: '/tmp/flotilla-job-keys-unused',
  executor: 'kubernetes',
  kubeconfig: '/dev/null',
  s3Endpoint: 'http://s3.example:9000',
  s3AccessKey: 'MANAGERKEY',
  s3SecretKey: 'manager-secret-key',
};
const settings = {} as SettingsStore; // an external S3 keeps nothing in the store
const open = (extra: Record<string, string>) =>
  openObjectStorage(loadConfig({ ...flags, ...extra }, {}), settings, pino({ level: 'silent' }));

describe('job storage keys on an external S3', () => {
  it('gives pods no keys by default', async () => {
    const storage = await open({});
    expect(storage.jobCredentials('svc', async () => true)).toBeUndefined();
    await storage.close();
  });

  it('gives the configured keys with --job-storage-keys manager', async () => {
    const storage = await open({ jobStorageKeys: 'manager' });
    expect(storage.jobCredentials('svc', async () => false)).toMatchObject({
      endpoint: 'http://s3.example:9000',
      access_key: 'MANAGERKEY',
      secret_key: 'manager-secret-key',
    });
    await storage.close();
  });

  it('refuses another value', () => {
    expect(() => loadConfig({ ...flags, jobStorageKeys: 'admin' }, {})).toThrow(ConfigError);
  });
});
