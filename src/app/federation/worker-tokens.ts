// The tokens a coordinator gave its workers (DESIGN §3.2): its proof, on every later create,
// update or delete, that a worker is its own. A worker keeps the newest one it was sent; the
// older ones stay in the list so a change that overtakes a lost answer still proves itself.
// Kept in the settings store per coordinator, newest first.

import { type NodeRef, nodeKey } from '../../core/federation/model.ts';
import { MAX_PROOF_TOKENS, type WorkerProof } from '../../core/federation/worker-guard.ts';
import type { SettingsStore } from '../../core/ports.ts';

const settingKey = (coordinator: string) => `federation:worker-tokens:${coordinator}`;
/** Tokens of members removed with their services: the delete may never be applied (a later
 * create of the member supersedes it in the outbox), so re-adding one proves with them. */
const retiredKey = (coordinator: string) => `federation:worker-tokens-retired:${coordinator}`;

export class WorkerTokens {
  constructor(
    private readonly d: {
      settings: SettingsStore;
      newToken: () => string;
      /** This cluster's id: the origin a proof names is `<cluster id>/<coordinator>`. */
      clusterId: string;
    },
  ) {}

  private async load(coordinator: string, key = settingKey): Promise<Map<string, string[]>> {
    const raw = await this.d.settings.getSetting(key(coordinator));
    return new Map(raw ? (Object.entries(JSON.parse(raw)) as Array<[string, string[]]>) : []);
  }

  private async save(coordinator: string, map: Map<string, string[]>, key = settingKey): Promise<void> {
    await this.d.settings.setSetting(key(coordinator), JSON.stringify(Object.fromEntries(map)));
  }

  /**
   * The tokens of each node, newest first: kept as they are, a fresh one for a node that has
   * none, and a fresh one in front of the others for every node when `rotate` (the
   * coordinator's visibility narrowed). Stored before any call carries them.
   */
  async assign(
    coordinator: string,
    nodes: readonly NodeRef[],
    rotate: boolean,
  ): Promise<Map<string, string[]>> {
    const map = await this.load(coordinator);
    const fresh = nodes.filter((n) => !map.has(nodeKey(n)));
    const retired = fresh.length ? await this.load(coordinator, retiredKey) : new Map<string, string[]>();
    for (const n of nodes) {
      const held = map.get(nodeKey(n));
      // A member added back: a fresh token in front of those its old worker may still hold.
      if (!held)
        map.set(
          nodeKey(n),
          [this.d.newToken(), ...(retired.get(nodeKey(n)) ?? [])].slice(0, MAX_PROOF_TOKENS),
        );
      else if (rotate) map.set(nodeKey(n), [this.d.newToken(), ...held].slice(0, MAX_PROOF_TOKENS));
    }
    await this.save(coordinator, map);
    if (fresh.some((n) => retired.delete(nodeKey(n)))) await this.save(coordinator, retired, retiredKey);
    return map;
  }

  /** The tokens known for nodes (removed ones included), without making any. */
  async known(coordinator: string): Promise<Map<string, string[]>> {
    const retired = await this.load(coordinator, retiredKey);
    return new Map([...retired, ...(await this.load(coordinator))]);
  }

  /**
   * Forgets these nodes (their services are being deleted: their tokens are kept aside in
   * case the delete is superseded), or every node when none are given (the coordinator went).
   */
  async forget(coordinator: string, nodes?: readonly NodeRef[]): Promise<void> {
    if (!nodes) {
      await this.save(coordinator, new Map());
      await this.save(coordinator, new Map(), retiredKey);
      return;
    }
    const map = await this.load(coordinator);
    const retired = await this.load(coordinator, retiredKey);
    for (const n of nodes) {
      const held = map.get(nodeKey(n));
      if (held) retired.set(nodeKey(n), held);
      map.delete(nodeKey(n));
    }
    await this.save(coordinator, map);
    await this.save(coordinator, retired, retiredKey);
  }

  /** The proof for calls to a node, when its tokens are known. */
  proof(coordinator: string, tokens: Map<string, string[]>, node: NodeRef): WorkerProof | undefined {
    const list = tokens.get(nodeKey(node));
    return list?.length ? { origin: `${this.d.clusterId}/${coordinator}`, tokens: list } : undefined;
  }
}
