// The body of a topology-wide member change (POST/PUT/DELETE /system/federation/{s} and the
// /system/replicas alias): OSCAR v4.1's {members, update?, clusters?, storage_providers?,
// delete?} ({replicas} on the alias). Checked as service definitions are — storable text and
// depth first (no recursion on a hostile body), then the same member and cluster schemas.
import { z } from 'zod';
import { FlotillaError, fail, isFlotillaError } from '../errors.ts';
import { checkStorable, clusterSchema, describeIssues, formatPath, replicaSchema } from '../fdl/service.ts';
import type { Member } from './model.ts';

export interface MembersRequest {
  members?: Member[];
  update?: Member[];
  clusters?: Record<string, unknown>;
  storage_providers?: Record<string, unknown>;
  delete?: boolean;
}

const membersRequestSchema = z.looseObject({
  members: z.array(replicaSchema, 'must be a list of members').optional(),
  replicas: z.array(replicaSchema, 'must be a list of members').optional(),
  update: z.array(replicaSchema, 'must be a list of members').optional(),
  clusters: z
    .record(z.string(), clusterSchema, 'must be a map of cluster id to {endpoint, auth_user, auth_password}')
    .optional(),
  storage_providers: z.record(z.string(), z.record(z.string(), z.looseObject({}))).optional(),
  delete: z.boolean('must be true or false').optional(),
});

/** The request, validated; VALIDATION_FAILED (400) naming the field otherwise. */
export const parseMembersRequest = (raw: unknown, alias: boolean): MembersRequest => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail('VALIDATION_FAILED', 'body must be a JSON object');
  }
  try {
    checkStorable(raw);
  } catch (e) {
    if (!isFlotillaError(e)) throw e;
    throw new FlotillaError(
      e.code,
      e.message
        .replace(/^invalid service: /, 'invalid request: ')
        .replace('service definition', 'request body'),
      e.details,
    );
  }
  const result = membersRequestSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    return fail('VALIDATION_FAILED', `invalid request: ${describeIssues(result.error)}`, {
      fields: result.error.issues.map((i) => formatPath(i.path)),
    });
  }
  const body = result.data;
  return {
    members: (alias ? (body.replicas ?? body.members) : body.members) as Member[] | undefined,
    update: body.update as Member[] | undefined,
    clusters: body.clusters,
    storage_providers: body.storage_providers,
    delete: body.delete,
  };
};
