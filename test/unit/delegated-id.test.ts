// X-Delegated-Job-ID over several hops: named once at the first origin, then unchanged.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { delegatedIdFor } from '../../src/core/delegation/delegated-id.ts';

const DELEGATED_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

describe('delegatedIdFor', () => {
  it('names a job at its origin on the first hop', () => {
    expect(delegatedIdFor({ id: 'j1', delegatedId: null, originCluster: null }, 'a')).toBe('a.j1');
  });

  it('keeps the id unchanged over every onward hop (the receiver dedupes across paths)', () => {
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    let job = { id: uuid, delegatedId: null as string | null, originCluster: null as string | null };
    let id = delegatedIdFor(job, 'a');
    // b, c, … receive it with X-Delegated-From: a and send it on.
    for (const here of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) {
      job = { id: `${here}-local-id`, delegatedId: id, originCluster: 'a' };
      const next = delegatedIdFor(job, here);
      expect(next).toBe(`a.${uuid}`);
      id = next;
    }
    expect(id).toMatch(DELEGATED_ID_RE);
  });

  it('scopes an id a plain client chose to the cluster that received it', () => {
    expect(delegatedIdFor({ id: 'x', delegatedId: 'client-42', originCluster: 'a' }, 'b')).toBe(
      'a.client-42',
    );
  });

  it('carries the job name (<service>-<uuid>) as OSCAR names the job', () => {
    const name = 'grayify-0f8fad5b-d9cb-469f-a165-70867728950e';
    expect(delegatedIdFor({ id: name, delegatedId: null, originCluster: null }, 'a')).toBe(`a.${name}`);
  });

  it('stays within the receiver limit for any cluster id and job name that are valid', () => {
    const service = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,37}[a-z0-9])?$/);
    // Cluster ids are up to 63 characters: with a 39-character service name the full name
    // would be over 128, and the uuid stands for it.
    const cluster = fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
    const jobId = fc.oneof(
      fc.tuple(service, fc.uuid()).map(([s, u]) => `${s}-${u}`),
      // Jobs stored before job names: a bare uuid.
      fc.uuid(),
    );
    fc.assert(
      fc.property(cluster, jobId, fc.array(cluster, { maxLength: 20 }), (origin, id0, hops) => {
        let id = delegatedIdFor({ id: id0, delegatedId: null, originCluster: null }, origin);
        const first = id;
        for (const here of hops)
          id = delegatedIdFor({ id: 'local', delegatedId: id, originCluster: origin }, here);
        expect(id).toMatch(DELEGATED_ID_RE);
        expect(id).toBe(first);
        const full = `${origin}.${id0}`;
        expect(id).toBe(full.length <= 128 ? full : `${origin}.${id0.slice(-36)}`);
      }),
    );
  });

  it('shortens a long client-chosen id to the same stand-in every time', () => {
    const long = 'c'.repeat(120);
    const a = delegatedIdFor({ id: 'x', delegatedId: long, originCluster: 'origin-cluster' }, 'b');
    expect(a).toMatch(DELEGATED_ID_RE);
    expect(a).toMatch(/^origin-cluster\.[0-9a-f]{16}$/);
    expect(delegatedIdFor({ id: 'y', delegatedId: long, originCluster: 'origin-cluster' }, 'c')).toBe(a);
  });
});
