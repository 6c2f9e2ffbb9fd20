// The X-Delegated-Job-ID a job carries to the cluster it is sent to. It names the job at its
// first origin (`<origin cluster>.<job name>`, the job name being OSCAR's `<service>-<uuid>`)
// and stays the same over every onward hop, so a receiver reached by two paths (a retry
// elsewhere, a forward) still runs it once. Receivers take at most 128 characters: when the
// name does not fit (a long cluster id), its uuid stands for it, and an id a plain client
// chose is shortened to a hash; both are the same on every hop and every retry.

export const MAX_DELEGATED_ID = 128;

const UUID_TAIL = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** 64 bits of FNV-1a as 16 hex characters: a stable short form of a long id. */
const shortHash = (text: string): string => {
  let h1 = 0x811c9dc5;
  let h2 = 0xcbf29ce4;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x0100019d) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
};

/** `<origin>.<id>`, or a shorter stand-in for the id when that is over the limit. */
const scoped = (origin: string, id: string): string => {
  const full = `${origin}.${id}`;
  if (full.length <= MAX_DELEGATED_ID) return full;
  return `${origin}.${UUID_TAIL.exec(id)?.[0] ?? shortHash(id)}`;
};

export const delegatedIdFor = (
  job: { id: string; delegatedId: string | null; originCluster: string | null },
  thisCluster: string,
): string => {
  if (!job.delegatedId) return scoped(thisCluster, job.id);
  const origin = job.originCluster ?? thisCluster;
  // An id a plain client chose (no origin prefix) is scoped to the cluster that received it.
  return job.delegatedId.startsWith(`${origin}.`) ? job.delegatedId : scoped(origin, job.delegatedId);
};
