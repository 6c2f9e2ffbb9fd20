// /system/services/{name}/deployment, …/deployment/logs and …/start|stop|restart (OSCAR v4.1,
// pkg/handlers/deployment.go and lifecycle.go). Deployments are OSCAR's exposed services
// (FDL `expose`: a Deployment, Service, Ingress and HPA on Kubernetes). Status and logs are for
// whoever may use the service; start/stop/restart for its owner (or the admin). Without an
// executor that runs exposed services (the process executor), the status is OSCAR's
// "unavailable" answer and start/stop/restart answer 501 naming the executor that runs.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import { isExposed } from '../core/fdl/expose.ts';
import type { Service } from '../core/fdl/service.ts';
import type { DeploymentLogs, DeploymentStatus, ExposedServices } from '../core/ports.ts';

export interface ServiceDeploymentDeps {
  services: {
    get(p: Principal, name: string): Promise<Service>;
    getManageable(p: Principal, name: string): Promise<Service>;
  };
  executor: { kind: string; exposed?: ExposedServices };
  /** Where OSCAR would put the service's resources (config.services_namespace). */
  namespace: string;
}

export const DEFAULT_TAIL_LINES = 200;

/** OSCAR's types.ServiceDeploymentSummary. */
export type DeploymentSummary = Omit<DeploymentStatus, 'service_name' | 'namespace'>;

export class ServiceDeployment {
  constructor(private readonly d: ServiceDeploymentDeps) {}

  private why(): string {
    return `exposed services need the kubernetes executor; this manager runs the ${this.d.executor.kind} executor (jobs only)`;
  }

  /** Visible to whoever may use the service. */
  async status(principal: Principal, name: string): Promise<DeploymentStatus> {
    return this.statusOf(await this.d.services.get(principal, name));
  }

  /**
   * OSCAR's `deployment` summary of a service the caller may already see (GET
   * /system/services[/{name}]?include=deployment: setDeploymentSummary in OSCAR's list handler):
   * the status without service_name and namespace.
   */
  async summaryOf(s: Service): Promise<DeploymentSummary> {
    const { service_name: _n, namespace: _ns, ...summary } = await this.statusOf(s);
    return summary;
  }

  private async statusOf(s: Service): Promise<DeploymentStatus> {
    const exposed = this.d.executor.exposed;
    if (exposed) return exposed.status(s);
    return {
      service_name: s.name,
      namespace: this.d.namespace,
      state: 'unavailable',
      reason: `Current deployment visibility is unavailable for this service runtime: ${this.why()}.`,
      active_instances: 0,
      affected_instances: 0,
      resource_kind: 'unavailable',
    };
  }

  async logs(
    principal: Principal,
    name: string,
    opts: { tailLines?: number; timestamps?: boolean } = {},
  ): Promise<DeploymentLogs> {
    const s = await this.d.services.get(principal, name);
    const exposed = this.d.executor.exposed;
    if (exposed) {
      return exposed.logs(s, {
        tailLines: opts.tailLines ?? DEFAULT_TAIL_LINES,
        timestamps: opts.timestamps ?? false,
      });
    }
    return {
      service_name: s.name,
      available: false,
      message: 'Deployment logs are unavailable for this service.',
      entries: [],
    };
  }

  /** Start, stop or restart: the owner (or the admin), an exposed service, and Kubernetes. */
  async lifecycle(principal: Principal, name: string, action: 'start' | 'stop' | 'restart') {
    const s = await this.d.services.getManageable(principal, name);
    if (!isExposed(s)) fail('BAD_REQUEST', `service "${s.name}" is not exposed`);
    const exposed = this.d.executor.exposed;
    if (!exposed) return fail('NOT_IMPLEMENTED', `cannot ${action} service "${s.name}": ${this.why()}`);
    return exposed.lifecycle(s, action);
  }
}
