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

  it('stays within the receiver limit for any cluster id and job id that are valid', () => {
    const name = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,37}[a-z0-9])?$/);
    fc.assert(
      fc.property(name, fc.uuid(), fc.array(name, { maxLength: 20 }), (origin, jobId, hops) => {
        let id = delegatedIdFor({ id: jobId, delegatedId: null, originCluster: null }, origin);
        for (const here of hops)
          id = delegatedIdFor({ id: 'local', delegatedId: id, originCluster: origin }, here);
        expect(id).toMatch(DELEGATED_ID_RE);
        expect(id).toBe(`${origin}.${jobId}`);
      }),
    );
  });
});
