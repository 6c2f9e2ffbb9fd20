// Who may make a service a federation worker, change one or delete one (DESIGN §3.2).
// Clients never set `oscar.grycap/*` annotations: the manager does, on a worker. A
// coordinator's call names the federation it acts for (X-Flotilla-Origin) and proves it with
// the worker's own token (X-Flotilla-Worker-Token), which only the coordinator that
// generated it holds — a same-named service someone else made does not hold it. Callers
// that know nothing of this (OSCAR clients and peers) keep working for ordinary services.
import { sameSecret } from '../auth/secrets.ts';
import { fail } from '../errors.ts';
import { SERVICE_NAME_RE } from '../fdl/service.ts';
import { FEDERATION_WORKER, ORIGIN_CLUSTER, ORIGIN_SERVICE, workerOriginOf } from './model.ts';

export const ORIGIN_HEADER = 'x-flotilla-origin';
export const WORKER_TOKEN_HEADER = 'x-flotilla-worker-token';
/** Tokens a coordinator presents at once: the current one and those it replaced. */
export const MAX_PROOF_TOKENS = 8;

/** A coordinator's claim on a worker. */
export interface WorkerProof {
  /** "<cluster id>/<service name>" of the coordinator. */
  origin: string;
  /** Tokens it gave this worker, newest first: the worker holds one of them, and keeps the first. */
  tokens: readonly string[];
}

const MANAGER_PREFIX = /^oscar\.grycap\//i;
const TOKEN_RE = /^[0-9a-f]{64}$/;
const CLUSTER_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

type Annotations = Record<string, string> | undefined;

/** The proof a request's headers carry, or undefined when it carries none; 400 when malformed. */
export const parseWorkerProof = (
  origin: string | undefined,
  tokens: string | undefined,
): WorkerProof | undefined => {
  if (origin === undefined && tokens === undefined) return undefined;
  const [cluster, service, ...more] = (origin ?? '').split('/');
  if (more.length > 0 || !CLUSTER_RE.test(cluster ?? '') || !SERVICE_NAME_RE.test(service ?? '')) {
    fail('BAD_REQUEST', `${ORIGIN_HEADER} must be "<cluster id>/<service name>"`);
  }
  const list = (tokens ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (list.length === 0 || list.length > MAX_PROOF_TOKENS || !list.every((t) => TOKEN_RE.test(t))) {
    fail(
      'BAD_REQUEST',
      `${WORKER_TOKEN_HEADER} must be 1 to ${MAX_PROOF_TOKENS} service tokens (64 hex characters), comma-separated`,
    );
  }
  return { origin: origin as string, tokens: list };
};

/** The annotations of a worker of `origin`, as the manager sets them. */
export const workerAnnotations = (origin: string): Record<string, string> => {
  const slash = origin.indexOf('/');
  return {
    [ORIGIN_CLUSTER]: origin.slice(0, slash),
    [ORIGIN_SERVICE]: origin.slice(slash + 1),
    [FEDERATION_WORKER]: 'true',
  };
};

const managerKeys = (a: Annotations): string[] => Object.keys(a ?? {}).filter((k) => MANAGER_PREFIX.test(k));

const withoutManagerKeys = (a: Annotations): Annotations =>
  a && Object.fromEntries(Object.entries(a).filter(([k]) => !MANAGER_PREFIX.test(k)));

const marksWorker = (a: Annotations): boolean =>
  Object.entries(a ?? {}).some(([k, v]) => k.toLowerCase() === FEDERATION_WORKER && v === 'true');

const refuseManagerKeys = (keys: string[]): never =>
  fail(
    'VALIDATION_FAILED',
    `annotations.${keys[0]}: annotations under oscar.grycap/ are set by the manager on federation workers; remove them`,
    { fields: keys.map((k) => `annotations.${k}`) },
  );

/** A worker's body names its origin in annotations too: it must be the one the call proves. */
const checkStatedOrigin = (a: Annotations, origin: string): void => {
  const lower = Object.fromEntries(Object.entries(a ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const stated = `${lower[ORIGIN_CLUSTER] ?? ''}/${lower[ORIGIN_SERVICE] ?? ''}`;
  if (stated !== '/' && stated !== origin) {
    fail(
      'BAD_REQUEST',
      `the worker's annotations name origin ${stated}, the ${ORIGIN_HEADER} header ${origin}`,
    );
  }
};

const notItsWorker = (name: string, origin: string): never =>
  fail('SERVICE_EXISTS', `service "${name}" on this cluster is not a worker of ${origin}; it is left as is`);

/** The coordinator holds the worker's token (and, for a worker, is its origin). */
const provesOwnership = (previous: { annotations?: Annotations; token: string }, proof: WorkerProof) => {
  const held = workerOriginOf(previous);
  return (!held || held === proof.origin) && proof.tokens.some((t) => sameSecret(t, previous.token));
};

export interface WorkerChange {
  /** The annotations to store. */
  annotations: Annotations;
  /** The token to store when the coordinator sets it; undefined leaves it to the caller. */
  token: string | undefined;
}

/** A create: client-set oscar.grycap/ annotations are refused unless a coordinator makes its worker. */
export const decideWorkerCreate = (
  incoming: { annotations?: Annotations },
  proof?: WorkerProof,
): WorkerChange => {
  if (!proof) {
    const keys = managerKeys(incoming.annotations);
    if (keys.length) refuseManagerKeys(keys);
    return { annotations: incoming.annotations, token: undefined };
  }
  // The coordinator generated this token and will prove itself with it from now on.
  return provenChange(incoming, proof);
};

/** What a coordinator's proven change stores: the manager's own annotations, its newest token. */
const provenChange = (incoming: { annotations?: Annotations }, proof: WorkerProof): WorkerChange => {
  if (!marksWorker(incoming.annotations)) {
    return { annotations: withoutManagerKeys(incoming.annotations), token: proof.tokens[0] };
  }
  checkStatedOrigin(incoming.annotations, proof.origin);
  return {
    annotations: { ...withoutManagerKeys(incoming.annotations), ...workerAnnotations(proof.origin) },
    token: proof.tokens[0],
  };
};

/**
 * An update. A worker changes only by its coordinator's hand; a coordinator changes only a
 * service it proves is its own (a worker, or one it detached), never a stranger's.
 */
export const decideWorkerUpdate = (
  name: string,
  incoming: { annotations?: Annotations },
  previous: { annotations?: Annotations; token: string },
  proof?: WorkerProof,
): WorkerChange => {
  if (proof) {
    if (!provesOwnership(previous, proof)) notItsWorker(name, proof.origin);
    return provenChange(incoming, proof);
  }
  const held = workerOriginOf(previous);
  if (held) {
    fail('CONFLICT', `service "${name}" is a federation worker of ${held}; change it on its coordinator`);
  }
  const keys = managerKeys(incoming.annotations);
  if (keys.length) refuseManagerKeys(keys);
  return { annotations: incoming.annotations, token: undefined };
};

/** A delete by a coordinator takes only its own worker; the owner or admin may delete any. */
export const decideWorkerDelete = (
  name: string,
  previous: { annotations?: Annotations; token: string },
  proof?: WorkerProof,
): void => {
  if (proof && !provesOwnership(previous, proof)) notItsWorker(name, proof.origin);
};
