// /system/volumes and /system/volumes/{name} (OSCAR v4.1, pkg/handlers/volumes.go): managed
// volumes are Kubernetes PersistentVolumeClaims in the caller's namespace. Callers and
// bodies are checked; the volumes need the kubernetes executor and answer 501 naming it.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import { parseMemoryBytes } from '../core/fdl/quantity.ts';

const VOLUME_NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export class Volumes {
  constructor(private readonly executor: { kind: string }) {}

  private unsupported(): never {
    return fail(
      'NOT_IMPLEMENTED',
      this.executor.kind === 'kubernetes'
        ? 'managed volumes are not implemented by this build of the kubernetes executor'
        : `managed volumes are Kubernetes PersistentVolumeClaims and need the kubernetes executor; this manager runs the ${this.executor.kind} executor`,
    );
  }

  private caller(principal: Principal): void {
    if (principal.kind !== 'admin' && principal.kind !== 'user') {
      fail('FORBIDDEN', 'volumes are for the admin and OIDC users');
    }
  }

  /** The name OSCAR takes (a DNS label), or a 400 naming the problem. */
  static checkName(name: unknown): string {
    if (typeof name !== 'string' || !VOLUME_NAME_RE.test(name)) {
      fail(
        'VALIDATION_FAILED',
        'name: must be a DNS label (1-63 lowercase letters, digits or "-", starting and ending with a letter or digit)',
      );
    }
    return name as string;
  }

  list(principal: Principal): never {
    this.caller(principal);
    return this.unsupported();
  }

  get(principal: Principal, name: string): never {
    this.caller(principal);
    Volumes.checkName(name);
    return this.unsupported();
  }

  remove(principal: Principal, name: string): never {
    this.caller(principal);
    Volumes.checkName(name);
    return this.unsupported();
  }

  /** OSCAR's ManagedVolumeCreateRequest: {name, size} (a Kubernetes quantity). */
  create(principal: Principal, raw: unknown): never {
    this.caller(principal);
    const body = raw as Record<string, unknown> | null;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      fail('VALIDATION_FAILED', 'the body must be a JSON object {name, size}');
    }
    Volumes.checkName(body!.name);
    const size = body!.size;
    if (typeof size !== 'string' || !(parseMemoryBytes(size) ?? 0)) {
      fail('VALIDATION_FAILED', 'size: is required, a quantity such as "1Gi"');
    }
    return this.unsupported();
  }
}
