// Service use cases: create, read, update, delete with OSCAR's rules on ownership and
// visibility, and DESIGN §3.2's on federation workers (the manager sets their annotations;
// a coordinator proves a worker is its own) and tokens (rotated when visibility narrows).
// Decides with core, acts through the Store port.
import { randomBytes } from 'node:crypto';
import {
  canManage,
  canUse,
  narrowsVisibility,
  ownerOf,
  type Principal,
  refuseDelegation,
} from '../core/auth/principal.ts';
import { FlotillaError, fail } from '../core/errors.ts';
import { restoreMaskedSecrets } from '../core/fdl/secrets.ts';
import { applyDefaults, parseServiceInput, type Service, type ServiceInput } from '../core/fdl/service.ts';
import { normalizeServiceEndpoints } from '../core/federation/endpoint.ts';
import {
  decideWorkerCreate,
  decideWorkerDelete,
  decideWorkerUpdate,
  type WorkerProof,
} from '../core/federation/worker-guard.ts';
import type { NewOutboxRow, Store } from '../core/ports.ts';
import type { WorkerTombstones } from './federation/worker-tombstones.ts';

export const newServiceToken = (): string => randomBytes(32).toString('hex');

/**
 * The outbox rows a service write stores with it, both or neither (a coordinator's change
 * plan). Built once the before-hooks ran: they may keep what the rows read (the owner's token).
 */
export type QueueWith = () => Promise<NewOutboxRow[]>;

/** Hooks other use cases attach to the service lifecycle (buckets, federation). */
export interface ServiceHooks {
  /** Runs before the service is stored; throwing refuses the create. */
  beforeCreate?(service: Service, principal: Principal): Promise<void>;
  afterCreate?(service: Service, principal: Principal): Promise<void>;
  /** Runs before the new definition is stored; throwing refuses the update. */
  beforeUpdate?(service: Service, previous: Service, principal: Principal): Promise<void>;
  afterUpdate?(service: Service, previous: Service, principal: Principal): Promise<void>;
  /** Runs before the service is removed; throwing refuses the delete (the service stays). */
  beforeDelete?(service: Service, principal: Principal): Promise<void>;
  afterDelete?(service: Service, principal: Principal, opts: { cascade: boolean }): Promise<void>;
}

export interface ServiceDeps {
  store: Store;
  /** Reads of the whole list go through it when given (listing is hot and the list large). */
  catalog?: { list(): Promise<Service[]> };
  clusterId: string;
  hooks?: ServiceHooks[];
  /** The tokens coordinators' proven deletes spent on a worker: a create proving with one is late. */
  tombstones: WorkerTombstones;
}

export class ServiceUseCases {
  constructor(private readonly deps: ServiceDeps) {}

  private get hooks(): ServiceHooks[] {
    return this.deps.hooks ?? [];
  }

  /** Validates, applies defaults and stores a new service. */
  async create(principal: Principal, raw: unknown, proof?: WorkerProof): Promise<Service> {
    const service = await this.prepareCreate(principal, raw, proof);
    await this.commitCreate(principal, service, { proof });
    return service;
  }

  /**
   * The service a create would store: validated, endpoints normalised, defaults applied,
   * server fields set. `proof`: a coordinator creating its worker (it sets the token).
   */
  async prepareCreate(principal: Principal, raw: unknown, proof?: WorkerProof): Promise<Service> {
    this.refuseServiceToken(principal);
    const input = this.parse(raw);
    const worker = decideWorkerCreate(input, proof);
    const service = applyDefaults(this.stripMasks(withAnnotations(input, worker.annotations), undefined), {
      token: worker.token ?? newServiceToken(),
      owner: ownerOf(principal),
    });
    if (!service.cluster_id) service.cluster_id = this.deps.clusterId;
    if (await this.deps.store.getService(service.name)) {
      fail('SERVICE_EXISTS', `service "${service.name}" already exists`);
    }
    return service;
  }

  /**
   * Stores the service (and what `queue` builds, in the same write); the rows' ids. A worker
   * (`proof`) whose coordinator's delete spent its token meanwhile is deleted again: checked
   * after the insert, as that delete recorded before it looked (worker-tombstones.ts).
   */
  async commitCreate(
    principal: Principal,
    service: Service,
    opts: { queue?: QueueWith; proof?: WorkerProof } = {},
  ): Promise<number[]> {
    for (const h of this.hooks) await h.beforeCreate?.(service, principal);
    const ids = await this.deps.store.createService(service, await opts.queue?.());
    for (const h of this.hooks) await h.afterCreate?.(service, principal);
    if (opts.proof && (await this.deps.tombstones.spent(service.name, opts.proof.tokens[0]))) {
      await this.commitDelete(principal, service, { cascade: false });
      lateCreate(service.name);
    }
    return ids;
  }

  /** Replaces a service's definition; token and owner stay the server's. */
  async update(principal: Principal, raw: unknown, proof?: WorkerProof): Promise<Service> {
    const { service, previous } = await this.prepareUpdate(principal, raw, proof);
    await this.commitUpdate(principal, service, previous);
    return service;
  }

  /**
   * The definition an update would store. A worker is changed only with its coordinator's
   * `proof`, and a proof changes only the coordinator's own service (never someone else's
   * of the same name). The token rotates when visibility narrows; a coordinator sets its
   * worker's.
   */
  async prepareUpdate(
    principal: Principal,
    raw: unknown,
    proof?: WorkerProof,
  ): Promise<{ service: Service; previous: Service }> {
    const input = this.parse(raw);
    const previous = await this.getManageable(principal, input.name);
    const worker = decideWorkerUpdate(input.name, input, previous, proof);
    const merged = this.stripMasks(withAnnotations(input, worker.annotations), previous);
    const service = applyDefaults(merged, { token: previous.token, owner: previous.owner });
    if (!service.cluster_id) service.cluster_id = previous.cluster_id ?? this.deps.clusterId;
    // Whoever could use it before may hold its token: fewer users now, a new token.
    if (worker.token) service.token = worker.token;
    else if (narrowsVisibility(previous, service)) service.token = newServiceToken();
    // Federation changes carry a revision; one older than held must not win, so retries
    // and reordered deliveries cannot roll a worker back.
    const held = previous.federation?.revision;
    const incoming = service.federation?.revision;
    if (typeof held === 'number' && typeof incoming === 'number' && incoming < held) {
      fail(
        'STALE_REVISION',
        `service "${service.name}" holds federation revision ${held}; refused revision ${incoming}`,
      );
    }
    return { service, previous };
  }

  /** Stores the new definition (and what `queue` builds, in the same write); the rows' ids. */
  async commitUpdate(
    principal: Principal,
    service: Service,
    previous: Service,
    queue?: QueueWith,
  ): Promise<number[]> {
    for (const h of this.hooks) await h.beforeUpdate?.(service, previous, principal);
    const ids = await this.deps.store.updateService(service, await queue?.());
    for (const h of this.hooks) await h.afterUpdate?.(service, previous, principal);
    return ids;
  }

  async get(principal: Principal, name: string): Promise<Service> {
    const service = await this.deps.store.getService(name);
    if (!service) return fail('SERVICE_NOT_FOUND', `service "${name}" not found`);
    if (!canUse(principal, service)) fail('FORBIDDEN', `you may not access service "${name}"`);
    return service;
  }

  async list(principal: Principal): Promise<Service[]> {
    const all = this.deps.catalog ? await this.deps.catalog.list() : await this.deps.store.listServices();
    return all.filter((s) => canUse(principal, s));
  }

  async delete(
    principal: Principal,
    name: string,
    opts: { cascade: boolean; proof?: WorkerProof } = { cascade: true },
  ): Promise<Service> {
    const service = await this.prepareDelete(principal, name, opts.proof);
    await this.commitDelete(principal, service, opts);
    return service;
  }

  /**
   * The service a delete would remove; with a coordinator's `proof`, only its own worker, and
   * the tokens it proves with are spent first, whether the worker is there yet or not.
   */
  async prepareDelete(principal: Principal, name: string, proof?: WorkerProof): Promise<Service> {
    if (proof) await this.deps.tombstones.record(name, proof.tokens);
    const service = await this.getManageable(principal, name, 'delete', proof);
    decideWorkerDelete(name, service, proof);
    return service;
  }

  /**
   * The service, after checking the caller may change or delete it. A delete refused to a
   * user says what OSCAR says (its test suite reads it), also for a service that does not
   * exist: OSCAR does not tell a user which names are taken. A coordinator's delete of its
   * worker (`proof`) is told 404, which it reads as "already gone" (OSCAR clients send none).
   */
  async getManageable(
    principal: Principal,
    name: string,
    action?: 'delete',
    proof?: WorkerProof,
  ): Promise<Service> {
    this.refuseServiceToken(principal);
    const service = await this.deps.store.getService(name);
    const deleteDenied = 'You do not have permission to delete this service';
    if (!service) {
      if (action === 'delete' && principal.kind === 'user' && !proof) fail('FORBIDDEN', deleteDenied);
      return fail('SERVICE_NOT_FOUND', `service "${name}" not found`);
    }
    const denied = (text: string) => fail('FORBIDDEN', action === 'delete' ? deleteDenied : text);
    if (!canUse(principal, service)) denied(`you may not access service "${name}"`);
    if (!canManage(principal, service)) denied(`only the owner may change service "${name}"`);
    return service;
  }

  /** Removes the service (and stores what `queue` builds, in the same write); the rows' ids. */
  async commitDelete(
    principal: Principal,
    service: Service,
    opts: { cascade: boolean },
    queue?: QueueWith,
  ): Promise<number[]> {
    for (const h of this.hooks) await h.beforeDelete?.(service, principal);
    const ids = await this.deps.store.deleteService(service.name, await queue?.());
    if (!ids) return fail('SERVICE_NOT_FOUND', `service "${service.name}" not found`);
    for (const h of this.hooks) await h.afterDelete?.(service, principal, opts);
    return ids;
  }

  /** A client's definition: validated, cluster endpoints normalised (DESIGN §3.2). */
  private parse(raw: unknown): ServiceInput {
    return normalizeServiceEndpoints(parseServiceInput(raw));
  }

  private stripMasks(input: ServiceInput, previous: Service | undefined): ServiceInput {
    return restoreMaskedSecrets(input as Record<string, any>, previous) as ServiceInput;
  }

  /** Service and delegation tokens never create, change or delete services. */
  private refuseServiceToken(principal: Principal): void {
    refuseDelegation(principal);
    if (principal.kind === 'service-token') {
      throw new FlotillaError('FORBIDDEN', 'a service token may only invoke its service');
    }
  }
}

/** A coordinator's create of a worker that its own delete, sent after it, has already taken. */
const lateCreate = (name: string): never =>
  fail(
    'STALE_REVISION',
    `service "${name}": its coordinator deleted this worker already; the create, sent before that delete, is refused`,
  );

/** The input with the annotations the worker rules decided (kept absent when there are none). */
const withAnnotations = (
  input: ServiceInput,
  annotations: Record<string, string> | undefined,
): ServiceInput => (annotations === undefined ? input : { ...input, annotations });
