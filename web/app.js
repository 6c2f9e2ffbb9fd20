// Flotilla's dashboard: one page over the public HTTP API, with the caller's own credentials
// (kept in sessionStorage for this tab only). Every value from the API is set as text, never
// as HTML. Refreshes every few seconds.

const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);

let auth = sessionStorage.getItem('flotilla-auth');
let selected = sessionStorage.getItem('flotilla-service');
let selectedJob;
let timer;
/** Bumped at every sign-in and sign-out: a refresh loop of an earlier one stops. */
let generation = 0;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const api = async (path, { text = false } = {}) => {
  const res = await fetch(path, { headers: { authorization: auth } });
  const body = await res.text();
  if (!res.ok) {
    let message = body;
    try {
      message = JSON.parse(body).message ?? body;
    } catch {}
    throw new ApiError(res.status, `${res.status}: ${message}`);
  }
  return text ? body : JSON.parse(body);
};

const el = (tag, text, attrs = {}) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const row = (cells, attrs) => {
  const tr = el('tr', undefined, attrs);
  for (const c of cells) tr.append(c instanceof Node ? c : el('td', c));
  return tr;
};
const cell = (...children) => {
  const td = el('td');
  td.append(...children);
  return td;
};
const cores = (millis) => (millis / 1000).toFixed(millis % 1000 ? 2 : 0);
const gib = (bytes) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

// ------------------------------------------------------------------ sign in and out

const showLogin = (message = '') => {
  generation++;
  clearTimeout(timer);
  $('main').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
};

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const token = String(f.get('token') ?? '').trim();
  // UTF-8 before base64: btoa alone refuses characters outside Latin-1.
  const basic = String.fromCharCode(...new TextEncoder().encode(`${f.get('user')}:${f.get('password')}`));
  auth = token ? `Bearer ${token}` : `Basic ${btoa(basic)}`;
  try {
    await api('/system/info');
  } catch (e) {
    auth = null;
    return showLogin(e.status === 401 ? 'Wrong user, password or token.' : e.message);
  }
  sessionStorage.setItem('flotilla-auth', auth);
  ev.target.reset();
  start();
});

$('logout').addEventListener('click', () => {
  sessionStorage.removeItem('flotilla-auth');
  sessionStorage.removeItem('flotilla-service');
  auth = null;
  selected = null;
  selectedJob = undefined;
  // Nothing of the last caller's view stays in the page.
  for (const id of ['nodes', 'services', 'jobs']) $(id).tBodies[0].replaceChildren();
  for (const id of ['cluster', 'jobs-count', 'log', 'error']) $(id).textContent = '';
  showLogin();
});

// ------------------------------------------------------------------ the views

const renderCapacity = async () => {
  const [info, status] = await Promise.all([api('/system/info'), api('/system/status')]);
  $('cluster').textContent = `cluster ${info.cluster_id} · ${info.tier} tier · v${info.version}`;
  const body = $('nodes').tBodies[0];
  body.replaceChildren(
    ...(status.cluster?.nodes ?? []).map((n) =>
      row([
        n.name,
        `${cores(n.cpu.capacity_cores - n.cpu.request_cores)} / ${cores(n.cpu.capacity_cores)}`,
        `${gib(n.memory.capacity_bytes - n.memory.request_bytes)} / ${gib(n.memory.capacity_bytes)}`,
        n.status,
      ]),
    ),
  );
  const s = status.oscar?.pods?.states ?? {};
  $('jobs-count').textContent =
    `jobs: ${s.Pending ?? 0} pending, ${s.Running ?? 0} running, ${s.Succeeded ?? 0} succeeded, ${s.Failed ?? 0} failed`;
};

const membersCell = async (svc) => {
  const td = el('td');
  if (!svc.federation || (svc.federation.members ?? []).length === 0) return td;
  try {
    const fed = await api(`/system/federation/${encodeURIComponent(svc.name)}`);
    for (const m of fed.members ?? []) {
      const state = m.sync?.state ?? (m.type === 'endpoint' ? 'endpoint' : '');
      const item = el('span', `${m.cluster_id ?? m.url}/${m.service_name ?? ''} (${state}) `, {
        class: `state-${state}`,
        'data-member': m.cluster_id ?? m.url ?? '',
      });
      if (m.sync?.last_error) item.title = m.sync.last_error;
      td.append(item);
    }
  } catch (e) {
    td.textContent = e.message;
  }
  return td;
};

const renderServices = async () => {
  const services = await api('/system/services');
  const rows = await Promise.all(
    services.map(async (svc) => {
      const fed = svc.federation;
      const topology = fed ? `${fed.topology ?? 'none'}${fed.delegation ? ` · ${fed.delegation}` : ''}` : '';
      const replicas = (svc.replicas ?? []).map((r) => r.cluster_id ?? r.url).join(', ');
      const tr = row(
        [svc.name, svc.cpu ?? '', svc.memory ?? '', topology, await membersCell(svc), replicas],
        {
          class: `selectable${svc.name === selected ? ' selected' : ''}`,
          'data-service': svc.name,
        },
      );
      tr.addEventListener('click', () => {
        selected = svc.name;
        selectedJob = undefined;
        sessionStorage.setItem('flotilla-service', selected);
        refresh();
      });
      return tr;
    }),
  );
  $('services').tBodies[0].replaceChildren(...rows);
  if (selected && !services.some((s) => s.name === selected)) selected = null;
};

const renderJobs = async () => {
  $('jobs-section').hidden = !selected;
  if (!selected) return;
  $('jobs-service').textContent = selected;
  const listing = await api(`/system/logs/${encodeURIComponent(selected)}`);
  const jobs = Object.entries(listing.jobs ?? {}).sort(([, a], [, b]) =>
    String(b.creation_time).localeCompare(String(a.creation_time)),
  );
  const rows = jobs.map(([id, j]) => {
    const tr = row(
      [
        id,
        cell(el('span', j.status, { class: `status-${j.status}` })),
        j.delegated_to ? `${j.delegated_to} (delegated)` : 'here',
        when(j.creation_time),
        when(j.finish_time),
      ],
      { class: `selectable${id === selectedJob ? ' selected' : ''}`, 'data-job': id },
    );
    tr.addEventListener('click', () => {
      selectedJob = id;
      refresh();
    });
    return tr;
  });
  $('jobs').tBodies[0].replaceChildren(...rows);
  $('log-title').hidden = $('log').hidden = !selectedJob;
  if (selectedJob) {
    $('log-job').textContent = selectedJob;
    $('log').textContent = await api(
      `/system/logs/${encodeURIComponent(selected)}/${encodeURIComponent(selectedJob)}`,
      { text: true },
    ).catch((e) => e.message);
  }
};

const refresh = async () => {
  try {
    await Promise.all([renderCapacity(), renderServices()]);
    await renderJobs();
    $('error').textContent = '';
  } catch (e) {
    if (e.status === 401) return showLogin('Signed out: the credentials were refused.');
    $('error').textContent = e.message;
  }
};

// One refresh at a time: the next is scheduled when the last has rendered, so a slow API
// never gets answers rendered out of order.
const loop = async (g) => {
  await refresh();
  if (g === generation) timer = setTimeout(() => loop(g), REFRESH_MS);
};

const start = () => {
  $('login').hidden = true;
  $('main').hidden = false;
  $('logout').hidden = false;
  clearTimeout(timer);
  loop(++generation);
};

if (auth) start();
else showLogin();
