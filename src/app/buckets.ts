// /system/buckets: list, create, update visibility, list objects, delete, presign — over
// the ObjectStore port. Admin sees every bucket; a user sees the buckets of services they
// may use and the buckets they created.
import { canUse, ownerOf, type Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import type { Service } from '../core/fdl/service.ts';
import type { ObjectStore, ServiceStore, SettingsStore } from '../core/ports.ts';
import { BUCKET_NAME_RE, serviceBuckets } from '../core/storage/paths.ts';

export interface BucketMeta {
  owner: string;
  visibility: 'private' | 'public' | 'restricted';
  allowed_users: string[];
}

const META_KEY = (bucket: string) => `bucket:${bucket}`;
const VISIBILITIES = ['private', 'public', 'restricted'];
const PRESIGN_MAX_SECONDS = 7 * 24 * 3600;

export class BucketUseCases {
  constructor(
    private readonly deps: {
      objects: ObjectStore;
      store: ServiceStore & SettingsStore;
      /** A cached view of the service list (bucket checks run per S3 request). */
      catalog?: { listServices(): Promise<Service[]> };
    },
  ) {}

  private async meta(bucket: string): Promise<BucketMeta | undefined> {
    const raw = await this.deps.store.getSetting(META_KEY(bucket));
    return raw ? (JSON.parse(raw) as BucketMeta) : undefined;
  }

  /**
   * Buckets this caller may use: own, public, restricted to them, or of a service they may
   * use; a delegation may use the buckets of its service only.
   */
  async mayUse(principal: Principal, bucket: string, write = false): Promise<boolean> {
    if (principal.kind === 'admin') return true;
    if (principal.kind === 'service-token') return false;
    const services = await (this.deps.catalog ?? this.deps.store).listServices();
    const bucketsOf = (s: (typeof services)[number]) =>
      serviceBuckets([...(s.input ?? []), ...(s.output ?? [])]);
    if (principal.kind === 'delegation') {
      const s = services.find((x) => x.name === principal.service);
      return !!s && bucketsOf(s).includes(bucket);
    }
    const meta = await this.meta(bucket);
    if (meta) {
      if (meta.owner === principal.sub) return true;
      if (!write && meta.visibility === 'public') return true;
      if (!write && meta.visibility === 'restricted' && meta.allowed_users.includes(principal.sub))
        return true;
    }
    for (const s of services) {
      if (!canUse(principal, s)) continue;
      if (write && s.owner !== principal.sub) continue;
      if (bucketsOf(s).includes(bucket)) return true;
    }
    return false;
  }

  private async require(principal: Principal, bucket: string, write = false): Promise<void> {
    if (!BUCKET_NAME_RE.test(bucket)) fail('INVALID_NAME', `"${bucket}" is not a valid bucket name`);
    if (!(await this.deps.objects.bucketExists(bucket)))
      fail('BUCKET_NOT_FOUND', `bucket "${bucket}" not found`);
    if (!(await this.mayUse(principal, bucket, write)))
      fail('FORBIDDEN', `you may not access bucket "${bucket}"`);
  }

  async list(principal: Principal) {
    const out = [];
    for (const b of await this.deps.objects.listBuckets()) {
      if (!(await this.mayUse(principal, b.name))) continue;
      const meta = await this.meta(b.name);
      out.push({
        bucket_name: b.name,
        visibility: meta?.visibility ?? 'private',
        allowed_users: meta?.allowed_users ?? [],
        owner: meta?.owner ?? 'cluster_admin',
      });
    }
    return out;
  }

  private parseMeta(raw: unknown, owner: string): { bucket: string; meta: BucketMeta } {
    const body = raw as Record<string, unknown> | null;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      return fail('VALIDATION_FAILED', 'body must be a JSON object');
    const bucket = body.bucket_name;
    if (typeof bucket !== 'string' || !BUCKET_NAME_RE.test(bucket)) {
      fail('INVALID_NAME', 'bucket_name: must be 3-63 lowercase letters, digits, "." or "-"');
    }
    const visibility = body.visibility ?? 'private';
    if (typeof visibility !== 'string' || !VISIBILITIES.includes(visibility)) {
      fail('VALIDATION_FAILED', `visibility: must be one of ${VISIBILITIES.join(', ')}`);
    }
    const allowed = body.allowed_users ?? [];
    if (!Array.isArray(allowed) || allowed.some((u) => typeof u !== 'string')) {
      fail('VALIDATION_FAILED', 'allowed_users: must be a list of user ids');
    }
    return {
      bucket: bucket as string,
      meta: { owner, visibility: visibility as BucketMeta['visibility'], allowed_users: allowed as string[] },
    };
  }

  async create(principal: Principal, raw: unknown): Promise<void> {
    if (principal.kind === 'service-token') fail('FORBIDDEN', 'a service token may only invoke its service');
    const { bucket, meta } = this.parseMeta(raw, ownerOf(principal));
    if (await this.deps.objects.bucketExists(bucket)) fail('CONFLICT', `bucket "${bucket}" already exists`);
    await this.deps.objects.ensureBucket(bucket);
    await this.deps.store.setSetting(META_KEY(bucket), JSON.stringify(meta));
  }

  async update(principal: Principal, raw: unknown): Promise<void> {
    const { bucket, meta } = this.parseMeta(raw, ownerOf(principal));
    await this.require(principal, bucket, true);
    const prev = await this.meta(bucket);
    await this.deps.store.setSetting(
      META_KEY(bucket),
      JSON.stringify({ ...meta, owner: prev?.owner ?? meta.owner }),
    );
  }

  async objects(principal: Principal, bucket: string, page: string | undefined, limit = 1000) {
    await this.require(principal, bucket);
    const res = await this.deps.objects.listObjects(bucket, { cursor: page ?? null, limit });
    const meta = await this.meta(bucket);
    return {
      bucket_name: bucket,
      visibility: meta?.visibility ?? 'private',
      allowed_users: meta?.allowed_users ?? [],
      owner: meta?.owner ?? 'cluster_admin',
      objects: res.objects.map((o) => ({
        object_name: o.key,
        size_bytes: o.size,
        last_modified: o.lastModified.toISOString(),
      })),
      next_page: res.next ?? '',
      is_truncated: res.next !== null,
      returned_items: res.objects.length,
    };
  }

  async remove(principal: Principal, bucket: string): Promise<void> {
    await this.require(principal, bucket, true);
    await this.deps.objects.deleteBucket(bucket, { force: true });
    await this.deps.store.setSetting(META_KEY(bucket), '');
  }

  async presign(principal: Principal, bucket: string, raw: unknown) {
    const body = raw as Record<string, unknown> | null;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      return fail('VALIDATION_FAILED', 'body must be a JSON object');
    const key = body.object_key;
    if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
      fail('VALIDATION_FAILED', 'object_key: is required (1-1024 characters)');
    }
    const op = body.operation;
    if (op !== 'upload' && op !== 'download')
      fail('VALIDATION_FAILED', 'operation: must be "upload" or "download"');
    const expires = body.expires_in ?? 900;
    if (
      typeof expires !== 'number' ||
      !Number.isInteger(expires) ||
      expires < 1 ||
      expires > PRESIGN_MAX_SECONDS
    ) {
      fail('VALIDATION_FAILED', `expires_in: must be whole seconds from 1 to ${PRESIGN_MAX_SECONDS}`);
    }
    await this.require(principal, bucket, op === 'upload');
    const url = await this.deps.objects.presign(
      bucket,
      key as string,
      op as 'upload' | 'download',
      expires as number,
    );
    return {
      url,
      method: op === 'upload' ? 'PUT' : 'GET',
      headers: {} as Record<string, string>,
      expires_at: new Date(Date.now() + (expires as number) * 1000).toISOString(),
      object_key: key as string,
      operation: op as string,
    };
  }
}
