// An exposed service (FDL `expose`, OSCAR's types.Expose): a long-running workload with an
// HTTP port, reached through a Kubernetes Service and an Ingress (or a NodePort). This reads
// the stored block into one checked shape with OSCAR's defaults; pure.
//
// OSCAR's test for "exposed" is a non-zero first api_port (v4.1 stores the ports as a list;
// an int in an FDL is read as a one-element list by go-decode).
import { fail } from '../errors.ts';

export interface ExposeSpec {
  /** Container ports; the first is the one the Service's port 80 and the Ingress reach. */
  apiPorts: number[];
  /** NodePort per api port (0: none). Any non-zero one makes the Service a NodePort and drops the Ingress, as in OSCAR. */
  nodePorts: number[];
  minScale: number;
  maxScale: number;
  cpuThreshold: number;
  rewriteTarget: boolean;
  defaultCommand: boolean;
  setAuth: boolean;
  healthPath: string;
}

/** OSCAR's defaults (types.Expose in oscar-swagger-v4.1.2). */
export const EXPOSE_DEFAULTS = { minScale: 1, maxScale: 10, cpuThreshold: 80, healthPath: '/' } as const;

const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

export const isExposed = (s: object): boolean => {
  const first = asList(
    ((s as { expose?: unknown }).expose as { api_port?: unknown } | undefined)?.api_port,
  )[0];
  return typeof first === 'number' && first !== 0;
};

const int = (field: string, v: unknown, min: number, max: number, dflt: number): number => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    return fail(
      'BAD_REQUEST',
      `expose.${field}: must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
};

/**
 * The checked block of an exposed service, or undefined when it is not exposed. Refuses
 * (400, naming the field) what the cluster would refuse later or what makes no sense.
 */
export const exposeSpec = (s: object): ExposeSpec | undefined => {
  if (!isExposed(s)) return undefined;
  const e = ((s as { expose?: unknown }).expose ?? {}) as Record<string, unknown>;
  const ports = asList(e.api_port);
  if (ports.length > 16) fail('BAD_REQUEST', 'expose.api_port: at most 16 ports');
  const apiPorts = ports.map((p, i) => int(`api_port[${i}]`, p, 1, 65535, 0));
  if (new Set(apiPorts).size !== apiPorts.length) fail('BAD_REQUEST', 'expose.api_port: ports must differ');
  const rawNode = asList(e.nodePort);
  if (rawNode.length > apiPorts.length) {
    fail('BAD_REQUEST', 'expose.nodePort: one node port per api_port at most');
  }
  const nodePorts = apiPorts.map((_, i) => {
    const v = rawNode[i];
    if (v === undefined || v === 0) return 0;
    return int(`nodePort[${i}]`, v, 30000, 32767, 0);
  });
  const minScale = int('min_scale', e.min_scale, 0, 1000, EXPOSE_DEFAULTS.minScale);
  const maxScale = int('max_scale', e.max_scale, 1, 1000, EXPOSE_DEFAULTS.maxScale);
  if (maxScale < minScale) fail('BAD_REQUEST', `expose.max_scale: must be at least min_scale (${minScale})`);
  const cpuThreshold = int('cpu_threshold', e.cpu_threshold, 1, 100, EXPOSE_DEFAULTS.cpuThreshold);
  const bool = (field: string) => {
    const v = e[field];
    if (v !== undefined && v !== null && typeof v !== 'boolean') {
      fail('BAD_REQUEST', `expose.${field}: must be true or false`);
    }
    return v === true;
  };
  const health = e.health_path ?? EXPOSE_DEFAULTS.healthPath;
  if (typeof health !== 'string' || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$/.test(health)) {
    return fail(
      'BAD_REQUEST',
      'expose.health_path: must be an absolute URL path ("/…"), at most 256 characters',
    );
  }
  return {
    apiPorts,
    nodePorts,
    minScale,
    maxScale,
    cpuThreshold,
    rewriteTarget: bool('rewrite_target'),
    defaultCommand: bool('default_command'),
    setAuth: bool('set_auth'),
    healthPath: health,
  };
};
