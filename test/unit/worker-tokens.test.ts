// The tokens a coordinator proves its workers with (DESIGN §3.2). Found by the fault suite
// (FAULT_SEED=1055445502): a member removed with its service and added back before the
// delete reached it (the later create supersedes the delete in the outbox) kept its old
// worker, which holds the old token; a fresh token alone could never update it again.
import { describe, expect, it } from 'vitest';
import { WorkerTokens } from '../../src/app/federation/worker-tokens.ts';
import type { SettingsStore } from '../../src/core/ports.ts';

const tokens = () => {
  const settings = new Map<string, string>();
  let n = 0;
  const store = {
    getSetting: async (k: string) => settings.get(k),
    setSetting: async (k: string, v: string) => {
      settings.set(k, v);
    },
  } as unknown as SettingsStore;
  return new WorkerTokens({ settings: store, newToken: () => String(++n).padStart(64, '0'), clusterId: 'a' });
};

const b = { cluster_id: 'b', service_name: 'svc-b' };
const c = { cluster_id: 'c', service_name: 'svc-c' };

describe('worker tokens', () => {
  it('a member removed and added back proves with a fresh token and the ones its old worker may hold', async () => {
    const t = tokens();
    const first = await t.assign('svc', [b, c], false);
    const old = first.get('b/svc-b')!;
    await t.forget('svc', [b]);
    // Still known for the delete that is on its way.
    expect((await t.known('svc')).get('b/svc-b')).toEqual(old);
    const again = await t.assign('svc', [b, c], false);
    const proof = t.proof('svc', again, b)!;
    expect(proof.tokens).toHaveLength(2);
    expect(proof.tokens[0]).not.toBe(old[0]); // a fresh one first: the worker keeps it
    expect(proof.tokens.slice(1)).toEqual(old);
    expect(t.proof('svc', again, c)?.tokens).toEqual(first.get('c/svc-c'));
    // Added back once: the retired tokens are not handed out twice.
    await t.forget('svc', [c]);
    const third = await t.assign('svc', [b], false);
    expect(third.get('b/svc-b')).toEqual(proof.tokens);
  });

  it('a coordinator that goes forgets everything, retired tokens included', async () => {
    const t = tokens();
    await t.assign('svc', [b], false);
    await t.forget('svc', [b]);
    await t.forget('svc');
    expect((await t.known('svc')).size).toBe(0);
    expect((await t.assign('svc', [b], false)).get('b/svc-b')).toHaveLength(1);
  });

  it('never more than the proof limit', async () => {
    const t = tokens();
    await t.assign('svc', [b], false);
    for (let i = 0; i < 12; i++) {
      await t.assign('svc', [b], true);
      await t.forget('svc', [b]);
      await t.assign('svc', [b], false);
    }
    const map = await t.assign('svc', [b], false);
    expect(map.get('b/svc-b')!.length).toBeLessThanOrEqual(8);
  });
});
