// The federation of one service as an SVG graph: one node per cluster (this one, the
// coordinator, in the middle; its members around it), coloured by the member's sync state
// (red when the status cache no longer hears from it), with its free cpu,
// one edge per delegation link (the coordinator to each member; in a mesh, members to each
// other too), coloured by the jobs delegated over it in the last 10 minutes. Built with DOM calls only: no markup from data, no inline style (CSS classes).
const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 360;
const R = 34;

const svgEl = (tag, attrs = {}, text) => {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
};

/** Members of a federation view, flattened (a tree topology nests them). */
const flatten = (members, parent, out = []) => {
  for (const m of members ?? []) {
    out.push({ member: m, parent });
    if (m.members) flatten(m.members, m, out);
  }
  return out;
};

const idOf = (m) => m.cluster_id ?? m.url ?? '?';
/** A member the status cache no longer hears from is offline, whatever its last sync. */
export const stateOf = (m) =>
  m.status && !m.status.online
    ? 'offline'
    : (m.sync?.state ?? (m.type === 'endpoint' ? 'endpoint' : 'unknown'));
const cpuText = (m) => (m.status?.online ? ` · ${Number(m.status.free_cpu.toFixed(2))} cpu free` : '');
const pendingText = (m) => {
  const n = m.sync?.pending_changes ?? 0;
  return n > 0 ? ` · ${n} pending` : '';
};

const last = new WeakMap();

/** An edge's class by the jobs sent over it in the last minutes: none, some, many. */
const trafficClass = (n) => (n >= 10 ? 'traffic-high' : n > 0 ? 'traffic-some' : 'traffic-none');

export const renderGraph = (container, { service, view, clusterId, traffic = {} }) => {
  const sig = JSON.stringify([view, clusterId, traffic]);
  if (last.get(container) === sig) return;
  last.set(container, sig);
  if (!view || view.error) {
    container.replaceChildren(
      Object.assign(document.createElement('p'), { textContent: view?.error ?? 'loading…' }),
    );
    return;
  }
  const nodes = [
    { id: clusterId || 'this cluster', state: 'coordinator', label: service.name, parent: null },
  ];
  for (const { member, parent } of flatten(view.members)) {
    nodes.push({
      id: idOf(member),
      state: stateOf(member),
      label: `${member.service_name ?? member.url ?? ''}${cpuText(member)}${pendingText(member)}`,
      error: member.sync?.last_error ?? null,
      parent: parent ? idOf(parent) : nodes[0].id,
    });
  }
  // The coordinator in the middle, the members on a circle around it.
  const cx = W / 2;
  const cy = H / 2;
  const ring = Math.min(W, H) / 2 - R - 12;
  const pos = new Map([[nodes[0].id, { x: cx, y: cy }]]);
  const others = nodes.slice(1);
  others.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(others.length, 1);
    pos.set(n.id, { x: cx + ring * Math.cos(a) * 1.4, y: cy + ring * Math.sin(a) });
  });

  const svg = svgEl('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `Federation of ${service.name}: ${nodes.length} clusters, topology ${view.topology}, delegation ${view.delegation ?? 'static'}`,
    class: 'federation-graph',
  });
  svg.append(svgEl('title', {}, `${service.name}: ${view.topology} · ${view.delegation ?? 'static'}`));

  const edges = svgEl('g', { class: 'edges' });
  const links = others.map((n) => [n.parent, n.id]);
  if (view.topology === 'mesh') {
    for (let i = 0; i < others.length; i++)
      for (let j = i + 1; j < others.length; j++) links.push([others[i].id, others[j].id]);
  }
  for (const [from, to] of links) {
    const a = pos.get(from);
    const b = pos.get(to);
    if (!a || !b) continue;
    // Jobs go from the coordinator to a member: a link's traffic is its member's count.
    const jobs = from === nodes[0].id ? (traffic[to] ?? 0) : 0;
    const line = svgEl('line', {
      x1: a.x,
      y1: a.y,
      x2: b.x,
      y2: b.y,
      class: `edge ${trafficClass(jobs)}`,
      'data-edge': `${from}→${to}`,
      'data-jobs': jobs,
    });
    line.append(svgEl('title', {}, `delegation link ${from} → ${to}: ${jobs} jobs in the last 10 minutes`));
    edges.append(line);
  }
  svg.append(edges);

  for (const n of nodes) {
    const p = pos.get(n.id);
    const g = svgEl('g', {
      class: `node state-${n.state}`,
      'data-cluster': n.id,
      'data-state': n.state,
      transform: `translate(${p.x} ${p.y})`,
    });
    g.append(
      svgEl('title', {}, `${n.id}: ${n.state}${n.error ? ` (${n.error})` : ''}`),
      svgEl('circle', { r: R }),
      svgEl('text', { y: -4, class: 'node-id' }, n.id),
      svgEl('text', { y: 12, class: 'node-state' }, n.state),
      svgEl('text', { y: R + 14, class: 'node-label' }, n.label),
    );
    svg.append(g);
  }
  container.replaceChildren(svg);
};
