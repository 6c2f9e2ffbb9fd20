// /system/services/{name}/deployment, …/deployment/logs and …/start|stop|restart (OSCAR v4.1,
// pkg/handlers/deployment.go and lifecycle.go). Deployments are OSCAR's exposed services
// (Kubernetes Deployments). Jobs run here without one, so the status is OSCAR's
// "unavailable" answer for a service with no deployment; starting, stopping or restarting an
// exposed service needs the kubernetes executor and answers 501 naming the one that runs.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import type { Service } from '../core/fdl/service.ts';

export interface ServiceDeploymentDeps {
  services: {
    get(p: Principal, name: string): Promise<Service>;
    getManageable(p: Principal, name: string): Promise<Service>;
  };
  executor: { kind: string };
  /** Where OSCAR would put the service's resources (config.services_namespace). */
  namespace: string;
}

/** OSCAR's test for an exposed service: a non-zero first expose.api_port (stored as a list). */
export const isExposed = (s: Service): boolean => {
  const port = (s.expose as { api_port?: unknown } | undefined)?.api_port;
  const first = Array.isArray(port) ? port[0] : port;
  return typeof first === 'number' && first !== 0;
};

export class ServiceDeployment {
  constructor(private readonly d: ServiceDeploymentDeps) {}

  private why(): string {
    return this.d.executor.kind === 'kubernetes'
      ? 'this build of the kubernetes executor deploys no exposed services yet'
      : `exposed services need the kubernetes executor; this manager runs the ${this.d.executor.kind} executor (jobs only)`;
  }

  /** Visible to whoever may use the service. */
  async status(principal: Principal, name: string) {
    const s = await this.d.services.get(principal, name);
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

  async logs(principal: Principal, name: string) {
    const s = await this.d.services.get(principal, name);
    return {
      service_name: s.name,
      available: false,
      message: 'Deployment logs are unavailable for this service.',
      entries: [] as Array<{ timestamp?: string; message: string }>,
    };
  }

  /** Start, stop or restart: the owner (or the admin), an exposed service, and Kubernetes. */
  async lifecycle(principal: Principal, name: string, action: 'start' | 'stop' | 'restart'): Promise<never> {
    const s = await this.d.services.getManageable(principal, name);
    if (!isExposed(s)) fail('BAD_REQUEST', `service "${s.name}" is not exposed`);
    return fail('NOT_IMPLEMENTED', `cannot ${action} service "${s.name}": ${this.why()}`);
  }
}
