// The X-Delegated-Job-ID a job carries to the cluster it is sent to. It names the job at its
// first origin (`<origin cluster>.<origin job id>`) and stays the same over every onward hop,
// so a receiver reached by two paths (a retry elsewhere, a forward) still runs it once, and
// the id never grows past the receiver's 128-character limit.

export const delegatedIdFor = (
  job: { id: string; delegatedId: string | null; originCluster: string | null },
  thisCluster: string,
): string => {
  if (!job.delegatedId) return `${thisCluster}.${job.id}`;
  const origin = job.originCluster ?? thisCluster;
  // An id a plain client chose (no origin prefix) is scoped to the cluster that received it.
  return job.delegatedId.startsWith(`${origin}.`) ? job.delegatedId : `${origin}.${job.delegatedId}`;
};
