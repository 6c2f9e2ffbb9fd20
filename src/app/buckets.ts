// /system/buckets: list, create, update visibility, list objects, delete, presign — over
// the ObjectStore port, with one owner per bucket (DESIGN §3.2). Also what the embedded
// store's scoped keys may do: the same grants, request by request.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import type { Service } from '../core/fdl/service.ts';
import type { BucketStore, ObjectStore, ServiceStore } from '../core/ports.ts';
import {
  BUCKET_VISIBILITIES,
  type BucketAction,
  type BucketRecord,
  type BucketVisibility,
  bucketGrants,
  subjectOfPrincipal,
} from '../core/storage/bucket-access.ts';
import { delegationMayAccess, type StorageAccess } from '../core/storage/job-input.ts';
import { normaliseObjectKey } from '../core/storage/object-key.ts';
import { BUCKET_NAME_RE } from '../core/storage/paths.ts';

const PRESIGN_MAX_SECONDS = 7 * 24 * 3600;
/** The owner shown for a bucket without a record: it is the admin's. */
const UNRECORDED_OWNER = 'cluster_admin';

const VERB: Record<BucketAction, string> = { read: 'read', write: 'write to', manage: 'change or delete' };

/** Who OSCAR names in its refusals: the admin's user name or the OIDC subject. */
const callerName = (principal: Principal): string =>
  principal.kind === 'admin' ? principal.user : principal.kind === 'user' ? principal.sub : principal.kind;

export class BucketUseCases {
  constructor(
    private readonly deps: {
      objects: ObjectStore;
      store: BucketStore & ServiceStore;
      clusterId: string;
      /** A cached view of the service list (delegation checks run per S3 request). */
      catalog?: { listServices(): Promise<Service[]> };
    },
  ) {}

  /** Whether the caller may make this access: the /system/buckets routes and the S3 keys alike. */
  async allows(principal: Principal, access: StorageAccess): Promise<boolean> {
    if (principal.kind === 'delegation') {
      const services = await (this.deps.catalog ?? this.deps.store).listServices();
      const service = services.find((s) => s.name === principal.service);
      return !!service && delegationMayAccess(service, access, this.deps.clusterId);
    }
    const subject = subjectOfPrincipal(principal);
    if (!subject) return false;
    if (subject.kind === 'admin') return true;
    return bucketGrants(subject, await this.deps.store.getBucket(access.bucket), access.action);
  }

  private refuseTokens(principal: Principal): void {
    if (principal.kind === 'service-token') fail('FORBIDDEN', 'a service token may only invoke its service');
    if (principal.kind === 'delegation') {
      fail('FORBIDDEN', 'a delegation token reads storage keys only, not the bucket API');
    }
  }

  private async require(principal: Principal, bucket: string, action: BucketAction): Promise<void> {
    this.refuseTokens(principal);
    if (!BUCKET_NAME_RE.test(bucket)) fail('INVALID_NAME', `"${bucket}" is not a valid bucket name`);
    if (!(await this.deps.objects.bucketExists(bucket)))
      fail('BUCKET_NOT_FOUND', `The bucket '${bucket}' does not exist`);
    if (!(await this.allows(principal, { bucket, action }))) {
      // OSCAR's words ("User '…' is not authorised"), which its Robot suite reads.
      fail(
        'FORBIDDEN',
        `User '${callerName(principal)}' is not authorised to ${VERB[action]} bucket "${bucket}"`,
      );
    }
  }

  /**
   * A bucket as OSCAR shows it: `bucket_name` then `visibility` (its Robot suite reads the two
   * side by side), `allowed_users` only for a restricted bucket and otherwise null (Go's nil
   * slice), and `bucket_path`, the name again, which OSCAR's v3 answers and Robot suite use.
   */
  private view(name: string, rec: BucketRecord | undefined) {
    const visibility = rec?.visibility ?? 'private';
    const allowed = visibility === 'restricted' && rec?.allowedUsers.length ? rec.allowedUsers : null;
    return {
      bucket_name: name,
      visibility,
      allowed_users: allowed,
      owner: rec?.owner ?? UNRECORDED_OWNER,
      bucket_path: name,
    };
  }

  async list(principal: Principal) {
    this.refuseTokens(principal);
    const records = new Map((await this.deps.store.listBucketRecords()).map((r) => [r.name, r]));
    const subject = subjectOfPrincipal(principal);
    const out = [];
    for (const b of await this.deps.objects.listBuckets()) {
      const rec = records.get(b.name);
      if (subject && bucketGrants(subject, rec, 'read')) out.push(this.view(b.name, rec));
    }
    return out;
  }

  private parseBody(raw: unknown): { bucket: string; visibility: BucketVisibility; allowedUsers: string[] } {
    const body = raw as Record<string, unknown> | null;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      return fail('VALIDATION_FAILED', 'body must be a JSON object');
    // OSCAR v3 named the bucket `bucket_path` ("name" or "name/folder"); v4 `bucket_name`.
    let bucket = body.bucket_name;
    if (bucket === undefined && typeof body.bucket_path === 'string') {
      const path = body.bucket_path.replace(/^[\s/]+|[\s/]+$/g, '');
      if (path.includes('/')) {
        fail('VALIDATION_FAILED', 'bucket_path: name a bucket only; Flotilla makes no folders in it');
      }
      bucket = path;
    }
    if (typeof bucket !== 'string' || !BUCKET_NAME_RE.test(bucket)) {
      fail('INVALID_NAME', 'bucket_name: must be 3-63 lowercase letters, digits, "." or "-"');
    }
    const visibility = body.visibility ?? 'private';
    if (typeof visibility !== 'string' || !BUCKET_VISIBILITIES.includes(visibility as BucketVisibility)) {
      fail('VALIDATION_FAILED', `visibility: must be one of ${BUCKET_VISIBILITIES.join(', ')}`);
    }
    const allowed = body.allowed_users ?? [];
    if (!Array.isArray(allowed) || allowed.some((u) => typeof u !== 'string')) {
      fail('VALIDATION_FAILED', 'allowed_users: must be a list of user ids');
    }
    return {
      bucket: bucket as string,
      visibility: visibility as BucketVisibility,
      allowedUsers: allowed as string[],
    };
  }

  async create(principal: Principal, raw: unknown): Promise<void> {
    this.refuseTokens(principal);
    const subject = subjectOfPrincipal(principal)!;
    const { bucket, visibility, allowedUsers } = this.parseBody(raw);
    if (await this.deps.objects.bucketExists(bucket)) fail('CONFLICT', `bucket "${bucket}" already exists`);
    const owner = subject.kind === 'admin' ? UNRECORDED_OWNER : subject.sub;
    // The name is claimed before the bucket is made: of two racing creates, one owns it.
    const held = await this.deps.store.claimBucket({
      name: bucket,
      owner,
      visibility,
      allowedUsers,
      createdBy: null,
    });
    if (held.owner !== owner || held.createdBy !== null)
      fail('CONFLICT', `bucket "${bucket}" already exists`);
    try {
      await this.deps.objects.ensureBucket(bucket);
    } catch (e) {
      await this.deps.store.deleteBucketRecord(bucket);
      throw e;
    }
  }

  async update(principal: Principal, raw: unknown): Promise<void> {
    const { bucket, visibility, allowedUsers } = this.parseBody(raw);
    await this.require(principal, bucket, 'manage');
    const rec = await this.deps.store.getBucket(bucket);
    if (rec?.createdBy) {
      // As OSCAR: a service's bucket follows the service's visibility, changed through it.
      fail(
        'FORBIDDEN',
        `Forbidden action: A bucket from a service can't be modified (bucket "${bucket}" follows service "${rec.createdBy}"; change the service's visibility)`,
      );
    }
    if (!(await this.deps.store.updateBucket(bucket, { visibility, allowedUsers }))) {
      // An unrecorded bucket (the admin's) gets its record now.
      await this.deps.store.claimBucket({
        name: bucket,
        owner: UNRECORDED_OWNER,
        visibility,
        allowedUsers,
        createdBy: null,
      });
    }
  }

  async objects(principal: Principal, bucket: string, page: string | undefined, limit = 1000) {
    await this.require(principal, bucket, 'read');
    const res = await this.deps.objects.listObjects(bucket, { cursor: page ?? null, limit });
    return {
      ...this.view(bucket, await this.deps.store.getBucket(bucket)),
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
    await this.require(principal, bucket, 'manage');
    await this.deps.objects.deleteBucket(bucket, { force: true });
    await this.deps.store.deleteBucketRecord(bucket);
  }

  /**
   * The dashboard's upload and download (Flotilla's, not OSCAR's: a browser cannot reach an
   * object store on another origin under the page's CSP). The same grants as a presign.
   */
  async putObject(
    principal: Principal,
    bucket: string,
    rawKey: unknown,
    body: AsyncIterable<Uint8Array>,
    size: number,
  ): Promise<{ object_key: string; size_bytes: number }> {
    const key = this.objectKey(rawKey);
    await this.require(principal, bucket, 'write');
    await this.deps.objects.putObject(bucket, key, body, size);
    return { object_key: key, size_bytes: size };
  }

  async getObject(principal: Principal, bucket: string, rawKey: unknown) {
    const key = this.objectKey(rawKey);
    await this.require(principal, bucket, 'read');
    // The store answers OBJECT_NOT_FOUND for a missing key.
    return { key, body: await this.deps.objects.getObject(bucket, key) };
  }

  async deleteObject(principal: Principal, bucket: string, rawKey: unknown): Promise<void> {
    const key = this.objectKey(rawKey);
    await this.require(principal, bucket, 'write');
    if (!(await this.deps.objects.headObject(bucket, key)))
      fail('OBJECT_NOT_FOUND', `object "${key}" not found in bucket "${bucket}"`);
    await this.deps.objects.deleteObject(bucket, key);
  }

  private objectKey(raw: unknown): string {
    if (raw === undefined || raw === '') fail('VALIDATION_FAILED', 'key: is required (1-1024 characters)');
    return normaliseObjectKey(raw, 'key');
  }

  async presign(principal: Principal, bucket: string, raw: unknown) {
    const body = raw as Record<string, unknown> | null;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      return fail('VALIDATION_FAILED', 'body must be a JSON object');
    if (body.object_key === undefined || body.object_key === '') {
      fail('VALIDATION_FAILED', 'object_key: is required (1-1024 characters)');
    }
    const key = normaliseObjectKey(body.object_key, 'object_key');
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
    await this.require(principal, bucket, op === 'upload' ? 'write' : 'read');
    const url = await this.deps.objects.presign(bucket, key, op as 'upload' | 'download', expires as number);
    return {
      url,
      method: op === 'upload' ? 'PUT' : 'GET',
      headers: {} as Record<string, string>,
      expires_at: new Date(Date.now() + (expires as number) * 1000).toISOString(),
      object_key: key,
      operation: op as string,
    };
  }
}
