// Flotilla's dashboard: one page over the public HTTP API, with the caller's own credentials
// (kept in sessionStorage for this tab only), so each caller sees exactly what the API lets
// them see. Every value from the API is set as text, never as HTML; no inline script or style
// (the CSP forbids both). Refreshes every 2 s.
import { renderGraph, stateOf } from './graph.js';
import { RESOURCES, VERBS } from './scope.js';

const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

let auth = sessionStorage.getItem('flotilla-auth');
let selected = sessionStorage.getItem('flotilla-service');
let view = sessionStorage.getItem('flotilla-view') ?? 'services';
let selectedJob;
let openBucket;
let timer;
/** Bumped at every sign-in and sign-out: a refresh loop of an earlier one stops. */
let generation = 0;
/** Whether the API lets this caller see grants and peers (the admin only). */
let isAdmin = false;
/** The last services listing, for the filter and the dialogs. */
let services = [];

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API with the caller's credentials; JSON answers parsed, errors with the API's message. */
// An answer that arrives after a sign-out (or a new sign-in) belongs to the last caller: it is
// dropped, never rendered.
class StaleAnswer extends Error {}
const api = async (path, { method = 'GET', body, type, text = false, raw = false } = {}) => {
  const g = generation;
  const headers = { authorization: auth };
  if (type) headers['content-type'] = type;
  const res = await fetch(path, { method, headers, body });
  if (g !== generation) throw new StaleAnswer(path);
  if (raw && res.ok) return res;
  const answer = await res.text();
  if (g !== generation) throw new StaleAnswer(path);
  if (!res.ok) {
    let message = answer;
    try {
      message = JSON.parse(answer).message ?? answer;
    } catch {}
    throw new ApiError(res.status, `${res.status}: ${message || res.statusText}`);
  }
  if (text) return answer;
  return answer ? JSON.parse(answer) : undefined;
};
const json = (value) => ({ body: JSON.stringify(value), type: 'application/json' });

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
const button = (label, onClick, attrs = {}) => {
  const b = el('button', label, { type: 'button', ...attrs });
  b.addEventListener('click', (ev) => {
    ev.stopPropagation();
    onClick(ev);
  });
  return b;
};
/** What each table last showed: its rows are rebuilt only when that changes (focus stays put). */
const shown = new WeakMap();
const replaceRows = (table, signature, build) => {
  const body = table.tBodies[0];
  const sig = JSON.stringify(signature);
  if (shown.get(body) === sig) return;
  shown.set(body, sig);
  body.replaceChildren(...build());
};
const clearRows = (table) => {
  shown.delete(table.tBodies[0]);
  table.tBodies[0].replaceChildren();
};
const cores = (millis) => (millis / 1000).toFixed(millis % 1000 ? 2 : 0);
const gib = (bytes) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
const size = (n) =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
const users = (text) =>
  String(text ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);

/** Bytes as base64 (OSCAR's clients send invocation inputs so), in chunks: no argument limit. */
const toBase64 = (bytes) => {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
};
const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$|^[A-Za-z0-9+/]{2}==$|^[A-Za-z0-9+/]{3}=$/;
/**
 * A service's answer as the CLI shows it: an answer that is all base64 (a service writing its
 * output file) is decoded; text is shown, other bytes offered as a download.
 */
export const decodeAnswer = (answer) => {
  const compact = answer.trim();
  if (compact.length < 4 || !BASE64.test(compact)) return { text: answer, decoded: false };
  const bin = atob(compact);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), decoded: true };
  } catch {
    return { text: answer, decoded: false, bytes: compact.length >= 64 ? bytes : undefined };
  }
};

// ------------------------------------------------------------------ dialogs

for (const d of document.querySelectorAll('dialog')) {
  for (const c of d.querySelectorAll('.close')) c.addEventListener('click', () => d.close());
}

/** Opens the confirmation dialog; resolves when the action ran (or the user cancelled). */
const confirmThen = (title, text, action, verb = 'Delete') => {
  const d = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-error').textContent = '';
  const yes = $('confirm-yes');
  yes.textContent = verb;
  const onSubmit = async (ev) => {
    ev.preventDefault();
    try {
      await action();
      d.close();
      refresh();
    } catch (e) {
      $('confirm-error').textContent = e.message;
    }
  };
  d.querySelector('form').onsubmit = onSubmit;
  d.showModal();
  yes.focus();
};

// ------------------------------------------------------------------ sign in and out

const showLogin = (message = '') => {
  generation++;
  clearTimeout(timer);
  for (const d of document.querySelectorAll('dialog')) d.close();
  $('main').hidden = true;
  $('logout').hidden = true;
  $('nav').hidden = true;
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
  openBucket = undefined;
  services = [];
  // Nothing of the last caller's view stays in the page.
  for (const id of ['nodes', 'services', 'jobs', 'buckets', 'objects', 'grants', 'peers']) clearRows($(id));
  isAdmin = false;
  for (const b of document.querySelectorAll('[data-admin]')) b.hidden = true;
  $('graphs').replaceChildren();
  for (const id of [
    'cluster',
    'jobs-count',
    'log',
    'error',
    'invoke-output',
    'bucket-error',
    'upload-status',
  ])
    $(id).textContent = '';
  for (const f of document.querySelectorAll('dialog form')) f.reset();
  $('jobs-section').hidden = true;
  $('objects-section').hidden = true;
  showLogin();
});

// ------------------------------------------------------------------ navigation

const showView = (name) => {
  view = name;
  sessionStorage.setItem('flotilla-view', name);
  for (const b of $('nav').querySelectorAll('button')) {
    if (b.dataset.view === name) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${name}`;
};
for (const b of $('nav').querySelectorAll('button')) {
  b.addEventListener('click', () => {
    showView(b.dataset.view);
    refresh();
  });
}

// ------------------------------------------------------------------ capacity and services

const renderCapacity = async () => {
  const [info, status] = await Promise.all([api('/system/info'), api('/system/status')]);
  $('cluster').textContent = `cluster ${info.cluster_id} · ${info.tier} tier · v${info.version}`;
  $('nodes').tBodies[0].replaceChildren(
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

const isFederated = (svc) => !!svc.federation && (svc.federation.members ?? []).length > 0;
/** GET /system/federation/{s} of each federated service, once per refresh. */
const federationOf = async (list) => {
  const out = new Map();
  await Promise.all(
    list.filter(isFederated).map(async (svc) => {
      try {
        out.set(svc.name, await api(`/system/federation/${encodeURIComponent(svc.name)}`));
      } catch (e) {
        out.set(svc.name, { error: e.message });
      }
    }),
  );
  return out;
};

const memberId = (m) => m.cluster_id ?? m.url ?? '';
/** The outbox changes still on their way to a member, as words ('' when none). */
const pendingText = (m) => {
  const n = m.sync?.pending_changes ?? 0;
  return n > 0 ? `, ${n} change${n === 1 ? '' : 's'} pending` : '';
};
const syncCell = (fed) => {
  const td = el('td');
  if (!fed) return td;
  if (fed.error) {
    td.textContent = fed.error;
    return td;
  }
  for (const m of fed.members ?? []) {
    const state = stateOf(m);
    const item = el('span', `${memberId(m)}/${m.service_name ?? ''} (${state}${pendingText(m)}) `, {
      class: `state-${state}`,
      'data-member': memberId(m),
    });
    if (m.sync?.last_error) item.title = m.sync.last_error;
    td.append(item);
  }
  return td;
};

const matchesFilter = (svc) => {
  const q = $('filter').value.trim().toLowerCase();
  return (
    !q ||
    svc.name.toLowerCase().includes(q) ||
    String(svc.image ?? '')
      .toLowerCase()
      .includes(q)
  );
};

const selectService = (name) => {
  selected = name;
  selectedJob = undefined;
  sessionStorage.setItem('flotilla-service', name);
  refresh();
};

const renderServices = async (feds) => {
  const visible = services.filter(matchesFilter);
  const sig = [selected, visible.map((s) => [s.name, s.image, s.cpu, s.memory, s.federation]), [...feds]];
  replaceRows($('services'), sig, () => serviceRows(visible, feds));
  $('services-empty').hidden = services.length > 0;
  if (selected && !services.some((s) => s.name === selected)) selected = null;
};
const serviceRows = (visible, feds) =>
  visible.map((svc) => {
    const fed = svc.federation;
    const topology = fed ? `${fed.topology ?? 'none'}${fed.delegation ? ` · ${fed.delegation}` : ''}` : '';
    const actions = cell(
      button('Jobs', () => selectService(svc.name), { 'aria-label': `Jobs of ${svc.name}` }),
      button('Invoke', () => openInvoke(svc.name), { 'aria-label': `Invoke ${svc.name}` }),
      button('Edit', () => openEdit(svc.name), { 'aria-label': `Edit ${svc.name}` }),
      button(
        'Delete',
        () =>
          confirmThen(
            `Delete service ${svc.name}?`,
            `The service ${svc.name}, its jobs and the buckets it created are deleted.`,
            async () => {
              await api(`/system/services/${encodeURIComponent(svc.name)}`, { method: 'DELETE' });
              if (selected === svc.name) selected = null;
            },
          ),
        { 'aria-label': `Delete ${svc.name}`, class: 'danger' },
      ),
    );
    actions.className = 'actions';
    const tr = row(
      [
        svc.name,
        svc.image ?? '',
        svc.cpu ?? '',
        svc.memory ?? '',
        topology,
        syncCell(feds.get(svc.name)),
        actions,
      ],
      { class: `selectable${svc.name === selected ? ' selected' : ''}`, 'data-service': svc.name },
    );
    tr.addEventListener('click', () => selectService(svc.name));
    return tr;
  });
$('filter').addEventListener('input', () => renderServices(lastFeds));
let lastFeds = new Map();

const renderJobs = async () => {
  $('jobs-section').hidden = !selected;
  if (!selected) return;
  $('jobs-service').textContent = selected;
  const listing = await api(`/system/logs/${encodeURIComponent(selected)}`);
  const jobs = Object.entries(listing.jobs ?? {}).sort(([, a], [, b]) =>
    String(b.creation_time).localeCompare(String(a.creation_time)),
  );
  replaceRows($('jobs'), [selected, selectedJob, jobs], () =>
    jobs.map(([id, j]) => {
      const tr = row(
        [
          cell(button(id, () => selectJob(id), { class: 'link', 'aria-label': `Log of job ${id}` })),
          cell(el('span', j.status, { class: `status-${j.status}` })),
          j.delegated_to ? `${j.delegated_to} (delegated)` : 'here',
          // The decision recorded when the job was delegated or kept (the manager's words), and
          // why it failed when it did.
          [j.delegation?.summary, j.reason].filter(Boolean).join(' '),
          when(j.creation_time),
          when(j.finish_time),
        ],
        { class: `selectable${id === selectedJob ? ' selected' : ''}`, 'data-job': id },
      );
      tr.addEventListener('click', () => selectJob(id));
      return tr;
    }),
  );
  $('log-title').hidden = $('log').hidden = !selectedJob;
  if (selectedJob) {
    $('log-job').textContent = selectedJob;
    $('log').textContent = await api(
      `/system/logs/${encodeURIComponent(selected)}/${encodeURIComponent(selectedJob)}`,
      { text: true },
    ).catch((e) => e.message);
  }
};
const selectJob = (id) => {
  selectedJob = id;
  refresh();
};

// ------------------------------------------------------------------ new service and edit

let editing = null;
/** FDL or form: the form is for a new service only (an edit shows the whole service). */
const serviceMode = (mode) => {
  const f = $('service-form');
  f.elements.mode.value = mode;
  $('service-fdl').hidden = mode !== 'fdl';
  $('service-fields').hidden = mode !== 'form';
};
for (const r of $('service-form').elements.mode) r.addEventListener('change', () => serviceMode(r.value));
const openNew = () => {
  editing = null;
  const f = $('service-form');
  f.reset();
  serviceMode('fdl');
  $('service-mode').hidden = false;
  $('service-dialog-title').textContent = 'New service';
  $('service-submit').textContent = 'Create';
  $('service-error').textContent = '';
  $('service-dialog').showModal();
  f.elements.fdl.focus();
};
$('new-service').addEventListener('click', openNew);

const openEdit = async (name) => {
  let svc;
  try {
    svc = await api(`/system/services/${encodeURIComponent(name)}`);
  } catch (e) {
    $('error').textContent = e.message;
    return;
  }
  // No secret in the page: the token is left out; secrets come masked, and a masked value
  // sent back keeps the stored one.
  const { token: _token, ...shown } = svc;
  editing = name;
  const f = $('service-form');
  f.reset();
  serviceMode('fdl');
  $('service-mode').hidden = true;
  f.elements.fdl.value = JSON.stringify(shown, null, 2);
  $('service-dialog-title').textContent = `Edit ${name}`;
  $('service-submit').textContent = 'Save';
  $('service-error').textContent = '';
  $('service-dialog').showModal();
  f.elements.fdl.focus();
};

$('service-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const err = $('service-error');
  err.textContent = '';
  try {
    if (!editing && f.elements.mode.value === 'form') {
      const field = (n) => f.elements[`f_${n}`].value.trim();
      const svc = { name: field('name'), image: field('image'), script: f.elements.f_script.value };
      if (field('cpu')) svc.cpu = field('cpu');
      if (field('memory')) svc.memory = field('memory');
      await api('/system/services', { method: 'POST', ...json(svc) });
      $('service-dialog').close();
      refresh();
      return;
    }
    if (!f.elements.fdl.value.trim()) throw new Error('FDL: paste an FDL (or choose the form fields)');
    // The server reads the FDL as `flotilla apply` does (the page has no YAML parser).
    const { services: entries } = await api('/ui/fdl', {
      method: 'POST',
      body: f.elements.fdl.value,
      type: 'application/yaml',
    });
    const file = f.elements.script.files[0];
    const script = file ? await file.text() : undefined;
    for (const entry of entries) {
      const svc = { ...entry.service };
      if (script !== undefined) svc.script = script;
      else if (entry.script_path)
        throw new Error(`the FDL names the script "${entry.script_path}": choose that file`);
      if (editing) {
        if (svc.name !== editing) throw new Error(`name: an edit keeps the name "${editing}"`);
        await api('/system/services', { method: 'PUT', ...json(svc) });
      } else {
        await api('/system/services', { method: 'POST', ...json(svc) });
      }
    }
    $('service-dialog').close();
    refresh();
  } catch (e) {
    err.textContent = e.message;
  }
});

// ------------------------------------------------------------------ invoke

let invoking;
let downloadUrl;
const openInvoke = (name) => {
  invoking = name;
  const f = $('invoke-form');
  f.reset();
  $('invoke-service').textContent = name;
  $('invoke-output').hidden = true;
  $('invoke-output').textContent = '';
  $('invoke-download').hidden = true;
  $('invoke-status').textContent = '';
  $('invoke-dialog').showModal();
  f.elements.text.focus();
};
const invokeInput = async () => {
  const f = $('invoke-form');
  const file = f.elements.file.files[0];
  const bytes = file
    ? new Uint8Array(await file.arrayBuffer())
    : new TextEncoder().encode(f.elements.text.value);
  return toBase64(bytes);
};
$('invoke-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('invoke-output');
  const status = $('invoke-status');
  status.textContent = 'Running…';
  out.hidden = true;
  $('invoke-download').hidden = true;
  try {
    const answer = await api(`/run/${encodeURIComponent(invoking)}`, {
      method: 'POST',
      body: await invokeInput(),
      type: 'text/plain',
      text: true,
    });
    const shown = decodeAnswer(answer);
    out.textContent = shown.text;
    out.hidden = false;
    status.textContent = shown.decoded ? 'Answer (decoded from base64):' : 'Answer:';
    if (shown.bytes) {
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([shown.bytes]));
      const link = el('a', 'Download the decoded answer', { href: downloadUrl, download: 'answer.bin' });
      $('invoke-download').replaceChildren(link);
      $('invoke-download').hidden = false;
    }
  } catch (e) {
    status.textContent = e.message;
  }
});
$('invoke-async').addEventListener('click', async () => {
  const status = $('invoke-status');
  try {
    const job = await api(`/job/${encodeURIComponent(invoking)}`, {
      method: 'POST',
      body: await invokeInput(),
      type: 'text/plain',
    });
    status.textContent = `Job ${job.job_id} queued${job.delegated_to ? ` (delegated to ${job.delegated_to})` : ''}: see Jobs.`;
    selected = invoking;
    sessionStorage.setItem('flotilla-service', invoking);
    refresh();
  } catch (e) {
    status.textContent = e.message;
  }
});

// ------------------------------------------------------------------ buckets

const objectPath = (bucket, key) =>
  `/system/buckets/${encodeURIComponent(bucket)}/object?key=${encodeURIComponent(key)}`;

const renderBuckets = async () => {
  const list = await api('/system/buckets');
  replaceRows($('buckets'), list, () =>
    list.map((b) => {
      const actions = cell(
        button('Open', () => openObjects(b.bucket_name), { 'aria-label': `Open ${b.bucket_name}` }),
        button('Visibility', () => openVisibility(b), { 'aria-label': `Visibility of ${b.bucket_name}` }),
        button(
          'Delete',
          () =>
            confirmThen(
              `Delete bucket ${b.bucket_name}?`,
              `The bucket ${b.bucket_name} and every object in it are deleted.`,
              async () => {
                await api(`/system/buckets/${encodeURIComponent(b.bucket_name)}`, { method: 'DELETE' });
                if (openBucket === b.bucket_name) openBucket = undefined;
              },
            ),
          { 'aria-label': `Delete bucket ${b.bucket_name}`, class: 'danger' },
        ),
      );
      actions.className = 'actions';
      return row([b.bucket_name, b.visibility, b.owner, (b.allowed_users ?? []).join(', '), actions], {
        'data-bucket': b.bucket_name,
      });
    }),
  );
  if (openBucket && !list.some((b) => b.bucket_name === openBucket)) openBucket = undefined;
  await renderObjects();
};

const openObjects = (name) => {
  openBucket = name;
  $('upload-status').textContent = '';
  refresh();
};

const renderObjects = async () => {
  $('objects-section').hidden = !openBucket;
  if (!openBucket) return;
  const bucket = openBucket;
  $('objects-bucket').textContent = bucket;
  const listing = await api(`/system/buckets/${encodeURIComponent(bucket)}`);
  replaceRows($('objects'), [bucket, listing.objects], () =>
    (listing.objects ?? []).map((o) => {
      const actions = cell(
        button('Download', () => download(bucket, o.object_name), {
          'aria-label': `Download ${o.object_name}`,
        }),
        button(
          'Delete',
          () =>
            confirmThen(
              `Delete ${o.object_name}?`,
              `The object ${o.object_name} is deleted from ${bucket}.`,
              () => api(objectPath(bucket, o.object_name), { method: 'DELETE' }),
            ),
          { 'aria-label': `Delete object ${o.object_name}`, class: 'danger' },
        ),
      );
      actions.className = 'actions';
      return row([o.object_name, size(o.size_bytes), when(o.last_modified), actions], {
        'data-object': o.object_name,
      });
    }),
  );
};

const download = async (bucket, key) => {
  try {
    const res = await api(objectPath(bucket, key), { raw: true });
    const url = URL.createObjectURL(await res.blob());
    const a = el('a', undefined, { href: url, download: key.split('/').pop() });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (e) {
    $('bucket-error').textContent = e.message;
  }
};

// Upload with a progress bar: XMLHttpRequest reports upload progress, fetch does not.
$('upload').addEventListener('change', (ev) => {
  const file = ev.target.files[0];
  if (!file || !openBucket) return;
  const bar = $('upload-progress');
  const status = $('upload-status');
  const xhr = new XMLHttpRequest();
  xhr.open('PUT', objectPath(openBucket, file.name));
  xhr.setRequestHeader('authorization', auth);
  xhr.setRequestHeader('content-type', 'application/octet-stream');
  bar.hidden = false;
  bar.value = 0;
  status.textContent = `Uploading ${file.name}…`;
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
  };
  xhr.onload = () => {
    bar.hidden = true;
    if (xhr.status === 201) status.textContent = `Uploaded ${file.name}.`;
    else {
      let message = xhr.responseText;
      try {
        message = JSON.parse(message).message;
      } catch {}
      status.textContent = `${xhr.status}: ${message}`;
    }
    ev.target.value = '';
    refresh();
  };
  xhr.onerror = () => {
    bar.hidden = true;
    status.textContent = 'Upload failed: the manager could not be reached.';
  };
  xhr.send(file);
});

$('bucket-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $('bucket-error').textContent = '';
  try {
    await api('/system/buckets', {
      method: 'POST',
      ...json({
        bucket_name: String(f.get('bucket_name')).trim(),
        visibility: f.get('visibility'),
        allowed_users: users(f.get('allowed_users')),
      }),
    });
    ev.target.reset();
    refresh();
  } catch (e) {
    $('bucket-error').textContent = e.message;
  }
});

let visBucket;
const openVisibility = (b) => {
  visBucket = b.bucket_name;
  const f = $('visibility-form');
  $('visibility-bucket').textContent = b.bucket_name;
  f.elements.visibility.value = b.visibility;
  f.elements.allowed_users.value = (b.allowed_users ?? []).join(', ');
  $('visibility-error').textContent = '';
  $('visibility-dialog').showModal();
  f.elements.visibility.focus();
};
$('visibility-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    await api('/system/buckets', {
      method: 'PUT',
      ...json({
        bucket_name: visBucket,
        visibility: f.elements.visibility.value,
        allowed_users: users(f.elements.allowed_users.value),
      }),
    });
    $('visibility-dialog').close();
    refresh();
  } catch (e) {
    $('visibility-error').textContent = e.message;
  }
});

// ------------------------------------------------------------------ federation

/** How far back an edge's traffic counts. */
const TRAFFIC_WINDOW_MS = 10 * 60 * 1000;
/** Jobs of the service delegated to each cluster within the window (its first listing page). */
const recentTraffic = async (service) => {
  const out = {};
  try {
    const listing = await api(`/system/logs/${encodeURIComponent(service)}`);
    const since = Date.now() - TRAFFIC_WINDOW_MS;
    for (const j of Object.values(listing.jobs ?? {})) {
      if (j.delegated_to && Date.parse(j.creation_time) >= since) {
        out[j.delegated_to] = (out[j.delegated_to] ?? 0) + 1;
      }
    }
  } catch {}
  return out;
};

const renderFederation = async (feds, clusterId) => {
  const list = services.filter(isFederated);
  $('graphs-empty').hidden = list.length > 0;
  const keep = new Set();
  for (const svc of list) {
    const id = `graph-${svc.name}`;
    keep.add(id);
    let box = document.getElementById(id);
    if (!box) {
      box = el('section', undefined, { id, class: 'graph', 'data-graph': svc.name });
      box.append(el('h3', svc.name), el('div'));
      $('graphs').append(box);
    }
    renderGraph(box.lastChild, {
      service: svc,
      view: feds.get(svc.name),
      clusterId,
      traffic: await recentTraffic(svc.name),
    });
  }
  for (const box of [...$('graphs').children]) if (!keep.has(box.id)) box.remove();
};

// ------------------------------------------------------------------ grants and peers (admin)

const NOT_ADMIN = 'Grants and peers are for the admin.';
/** The nav shows Peers and Grants only to a caller the API answers them for. */
const probeAdmin = async () => {
  try {
    await api('/system/peers');
    isAdmin = true;
  } catch (e) {
    if (e.status === 401) throw e;
    isAdmin = false;
  }
  for (const b of document.querySelectorAll('[data-admin]')) b.hidden = !isAdmin;
  if (!isAdmin && (view === 'grants' || view === 'peers')) showView('services');
};

const checks = (fieldset, name, values) => {
  for (const v of values) {
    const label = el('label', undefined, { class: 'inline check' });
    label.append(el('input', undefined, { type: 'checkbox', name, value: v }), ` ${v}`);
    fieldset.append(label);
  }
};
checks($('grant-resources'), 'resources', RESOURCES);
checks($('grant-verbs'), 'verbs', VERBS);

const scopeSummary = (s) =>
  [
    s.resources.filter((r) => !(s.excluded_resources ?? []).includes(r)).join(', '),
    s.verbs.join(', '),
    `≤ ${s.max_rows_per_query} rows`,
    s.max_cpu ? `≤ ${s.max_cpu} cpu` : null,
    `${s.rate_per_minute}/min`,
  ]
    .filter(Boolean)
    .join(' · ');

const grantExpiry = (g) =>
  g.status === 'active' && g.cert_not_after
    ? `certificate until ${new Date(g.cert_not_after).toLocaleString()}`
    : g.status === 'revoked' && g.revoked_at
      ? `revoked ${new Date(g.revoked_at).toLocaleString()}`
      : '';

const renderGrants = async () => {
  const list = await api('/system/grants');
  $('grants-empty').hidden = list.length > 0;
  replaceRows($('grants'), list, () =>
    list.map((g) => {
      const actions = cell();
      if (g.status === 'pending')
        actions.append(
          button('Issue token', () => issueToken(g.id), { 'aria-label': `Issue a token for ${g.id}` }),
        );
      if (g.status === 'pending' || g.status === 'active')
        actions.append(
          button(
            'Revoke',
            () =>
              confirmThen(
                `Revoke grant ${g.id}?`,
                `Peer ${g.peer_name} loses what it may do here as ${g.subject_user}; its certificates go on the CRL at once. This cannot be undone.`,
                () =>
                  api(`/system/grants/${encodeURIComponent(g.id)}/revoke`, { method: 'POST', ...json({}) }),
                'Revoke',
              ),
            { 'aria-label': `Revoke ${g.id}`, class: 'danger' },
          ),
        );
      actions.className = 'actions';
      return row(
        [
          el('td', g.id, { class: 'mono' }),
          g.peer_name,
          g.subject_user,
          cell(el('span', g.status, { class: `state-${g.status}` })),
          scopeSummary(g.scope),
          grantExpiry(g),
          actions,
        ],
        { 'data-grant': g.id },
      );
    }),
  );
};

const openNewGrant = () => {
  const f = $('grant-form');
  f.reset();
  $('grant-error').textContent = '';
  $('grant-dialog').showModal();
  f.elements.peer.focus();
};
$('new-grant').addEventListener('click', openNewGrant);

$('grant-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const picked = (name) => [...f.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  const number = (name) => {
    const v = f.elements[name].value.trim();
    return v === '' ? undefined : Number(v);
  };
  const scope = { resources: picked('resources'), verbs: picked('verbs') };
  for (const k of ['max_rows_per_query', 'rate_per_minute'])
    if (number(k) !== undefined) scope[k] = number(k);
  if (f.elements.max_cpu.value.trim()) scope.max_cpu = f.elements.max_cpu.value.trim();
  $('grant-error').textContent = '';
  try {
    await api('/system/grants', {
      method: 'POST',
      ...json({ peer: f.elements.peer.value.trim(), subject: f.elements.subject.value.trim(), scope }),
    });
    $('grant-dialog').close();
    refresh();
  } catch (e) {
    $('grant-error').textContent = e.message;
  }
});

/** The token is shown once, in the dialog only; closing it takes it out of the page. */
const issueToken = async (id) => {
  try {
    const t = await api(`/system/grants/${encodeURIComponent(id)}/token`, { method: 'POST', ...json({}) });
    $('token-text').textContent =
      `For grant ${id}, single use, valid until ${new Date(t.expires_at).toLocaleTimeString()}: give it to the peer's admin (flotilla peer enroll).`;
    $('token-value').textContent = t.token;
    $('token-status').textContent = '';
    $('token-dialog').showModal();
    $('token-copy').focus();
  } catch (e) {
    $('error').textContent = e.message;
  }
};
// Cleared as the dialog goes: on Escape ('cancel' runs before it hides; 'close' is queued
// after), on the Close button's click (before its own close()), and on 'close' for any other way.
const forgetToken = () => {
  $('token-value').textContent = '';
  $('token-text').textContent = '';
  $('token-status').textContent = '';
};
$('token-dialog').addEventListener('cancel', forgetToken);
$('token-dialog').addEventListener('close', forgetToken);
$('token-dialog').querySelector('.close').addEventListener('click', forgetToken, { capture: true });
$('token-copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('token-value').textContent);
    $('token-status').textContent = 'Copied.';
  } catch {
    $('token-status').textContent = 'Copy it by hand: select the token.';
  }
});

const renderPeers = async () => {
  const list = await api('/system/peers');
  $('peers-empty').hidden = list.length > 0;
  replaceRows($('peers'), list, () =>
    list.map((p) => {
      const actions = cell(
        button(
          'Remove',
          () =>
            confirmThen(
              `Remove peer ${p.name}?`,
              `The record of ${p.name} (its certificate and key) is removed; federation over it stops. Enrolling again needs a new token from that manager.`,
              () => api(`/system/peers/${encodeURIComponent(p.name)}`, { method: 'DELETE' }),
              'Remove',
            ),
          { 'aria-label': `Remove peer ${p.name}`, class: 'danger' },
        ),
      );
      actions.className = 'actions';
      return row(
        [
          p.name,
          p.cluster_id,
          p.url,
          cell(el('span', p.state, { class: `state-${p.state}` })),
          new Date(p.cert_not_after).toLocaleString(),
          p.last_error ?? '',
          actions,
        ],
        { 'data-peer': p.name },
      );
    }),
  );
};

// ------------------------------------------------------------------ the loop

let clusterId = '';
/**
 * One refresh at a time: one asked for while another runs (after an action, say) runs right
 * after it, so an answer fetched before the action is never rendered after one fetched after.
 */
let running = null;
let again = false;
const refresh = () => {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    try {
      do {
        again = false;
        await refreshOnce();
      } while (again);
    } finally {
      running = null;
    }
  })();
  return running;
};
const refreshOnce = async () => {
  const g = generation;
  try {
    if (view === 'services' || view === 'federation') {
      const [list] = await Promise.all([api('/system/services'), renderCapacity()]);
      if (g !== generation) return;
      services = list;
      lastFeds = await federationOf(services);
      clusterId = ($('cluster').textContent.match(/^cluster (\S+)/) ?? [])[1] ?? '';
      if (view === 'services') {
        await renderServices(lastFeds);
        await renderJobs();
      } else {
        await renderFederation(lastFeds, clusterId);
      }
    } else if (view === 'buckets') {
      await renderBuckets();
    } else if (view === 'grants' || view === 'peers') {
      if (!isAdmin) throw new Error(NOT_ADMIN);
      await (view === 'grants' ? renderGrants() : renderPeers());
    }
    $('error').textContent = '';
  } catch (e) {
    if (e instanceof StaleAnswer) return;
    if (e.status === 401) return showLogin('Signed out: the credentials were refused.');
    $('error').textContent = e.message;
  }
};

// One refresh at a time: the next is scheduled when the last has rendered, so a slow API
// never gets answers rendered out of order.
const loop = async (g) => {
  try {
    await probeAdmin();
  } catch (e) {
    if (e.status === 401) return showLogin('Signed out: the credentials were refused.');
  }
  if (g === generation) loopRefresh(g);
};
const loopRefresh = async (g) => {
  await refresh();
  if (g === generation) timer = setTimeout(() => loopRefresh(g), REFRESH_MS);
};

const start = () => {
  $('login').hidden = true;
  $('main').hidden = false;
  $('logout').hidden = false;
  $('nav').hidden = false;
  showView(view);
  clearTimeout(timer);
  loop(++generation);
};

if (auth) start();
else showLogin();
