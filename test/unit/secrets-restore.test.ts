// restoreMaskedSecrets (src/core/fdl/secrets.ts): "***" sent back takes the stored value;
// secrets left out of a PUT are kept; the default MinIO view is dropped; and a definition with
// nothing to restore is taken as it is, not copied (a worker's every update is one).
import { describe, expect, it } from 'vitest';
import { MASK, restoreMaskedSecrets } from '../../src/core/fdl/secrets.ts';

const stored = {
  name: 's',
  environment: { variables: { A: '1' }, secrets: { TOKEN: 'stored-token' } },
  clusters: { b: { endpoint: 'http://b', auth_user: 'u', auth_password: 'stored-pw' } },
  storage_providers: { s3: { x: { access_key: 'ak', secret_key: 'stored-sk', region: 'r' } } },
};

describe('restoreMaskedSecrets', () => {
  it('puts the stored values back where "***" was sent, and drops a mask with nothing behind it', () => {
    const incoming = {
      name: 's',
      environment: { variables: {}, secrets: { TOKEN: MASK, NEW: MASK } },
      clusters: { b: { endpoint: 'http://b', auth_user: 'u', auth_password: MASK } },
      storage_providers: { s3: { x: { access_key: 'ak', secret_key: MASK, region: 'r' } } },
    };
    const out = restoreMaskedSecrets(incoming, stored);
    expect(out.environment.secrets).toEqual({ TOKEN: 'stored-token' });
    expect(out.clusters.b.auth_password).toBe('stored-pw');
    expect(out.storage_providers.s3.x.secret_key).toBe('stored-sk');
    expect(incoming.environment.secrets.TOKEN).toBe(MASK);
  });

  it('keeps the stored secrets when a PUT leaves them out, and drops the default MinIO view', () => {
    const out = restoreMaskedSecrets({ name: 's', environment: { variables: { B: '2' } } }, stored);
    expect(out.environment).toEqual({ variables: { B: '2' }, secrets: { TOKEN: 'stored-token' } });
    const view = {
      name: 's',
      storage_providers: { minio: { default: { endpoint: 'http://m', verify: true } } },
    };
    expect(restoreMaskedSecrets(view, undefined)).toEqual({ name: 's' });
  });

  it('takes a definition with nothing to restore as it is (no copy)', () => {
    const incoming = {
      name: 's',
      environment: { variables: { A: '***x' }, secrets: { TOKEN: 'new-token' } },
      clusters: { b: { endpoint: 'http://b' } },
      replicas: [{ type: 'oscar', cluster_id: 'b', service_name: MASK }],
    };
    expect(restoreMaskedSecrets(incoming, stored)).toBe(incoming);
    expect(restoreMaskedSecrets(incoming, undefined)).toBe(incoming);
  });
});
