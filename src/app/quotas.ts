// /system/quotas/user and /system/quotas/user/{userId} (OSCAR v4.1, pkg/handlers/quotas.go):
// per-user cpu, memory, volume and MinIO quotas, which OSCAR keeps in Kueue ClusterQueues
// and Kubernetes objects. Callers and bodies are checked as OSCAR checks them; the quotas
// themselves need the kubernetes executor and answer 501 naming the one that runs.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';

const USER_ID_MAX = 256;

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** OSCAR's QuotaUpdateRequest: every value a string; at least one quota given. */
export const parseQuotaUpdate = (raw: unknown): Record<string, unknown> => {
  if (!isObj(raw)) return fail('VALIDATION_FAILED', 'invalid payload: the body must be a JSON object');
  const strings = (where: string, obj: Record<string, unknown>, keys: string[]) => {
    for (const k of keys) {
      if (obj[k] !== undefined && obj[k] !== null && typeof obj[k] !== 'string') {
        fail(
          'VALIDATION_FAILED',
          `invalid payload: ${where}${k} must be a string (a quantity such as "2" or "4Gi")`,
        );
      }
    }
  };
  strings('', raw, ['cpu', 'memory', 'ephemeral_storage', 'gpu']);
  for (const [block, keys] of [
    ['minio', ['buckets', 'storage_per_bucket']],
    ['volumes', ['disk', 'volumes', 'max_disk_per_volume', 'min_disk_per_volume']],
  ] as const) {
    const v = raw[block];
    if (v === undefined || v === null) continue;
    if (!isObj(v)) fail('VALIDATION_FAILED', `invalid payload: ${block} must be an object`);
    strings(`${block}.`, v as Record<string, unknown>, [...keys]);
  }
  const given = (v: unknown) => typeof v === 'string' && v !== '';
  const any =
    ['cpu', 'memory', 'ephemeral_storage'].some((k) => given(raw[k])) ||
    (isObj(raw.volumes) && Object.values(raw.volumes).some(given)) ||
    (isObj(raw.minio) && Object.values(raw.minio).some(given));
  if (!any) fail('VALIDATION_FAILED', 'cpu, memory, ephemeral_storage, volumes or minio must be provided');
  return raw;
};

export class Quotas {
  constructor(private readonly executor: { kind: string }) {}

  private unsupported(): never {
    return fail(
      'NOT_IMPLEMENTED',
      this.executor.kind === 'kubernetes'
        ? 'user quotas (Kueue) are not implemented by this build of the kubernetes executor'
        : `user quotas are Kueue ClusterQueues and need the kubernetes executor; this manager runs the ${this.executor.kind} executor`,
    );
  }

  /** GET /system/quotas/user: the caller's own (an OIDC user). */
  own(principal: Principal): never {
    if (principal.kind !== 'user')
      fail('UNAUTHORIZED', 'missing user identificator: use an OIDC bearer token');
    return this.unsupported();
  }

  /** GET /system/quotas/user/{userId}: the admin's view of a user. */
  ofUser(principal: Principal, userId: string): never {
    this.adminAndUser(principal, userId);
    return this.unsupported();
  }

  /** PUT /system/quotas/user/{userId}. */
  update(principal: Principal, userId: string, raw: unknown): never {
    this.adminAndUser(principal, userId);
    parseQuotaUpdate(raw);
    return this.unsupported();
  }

  private adminAndUser(principal: Principal, userId: string): void {
    if (principal.kind !== 'admin') fail('FORBIDDEN', 'forbidden: user quotas are for the admin');
    if (userId.trim() === '' || userId.length > USER_ID_MAX) {
      fail('BAD_REQUEST', `userId must be 1 to ${USER_ID_MAX} characters`);
    }
  }
}
