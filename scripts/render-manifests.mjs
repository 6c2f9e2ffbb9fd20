#!/usr/bin/env node
// Renders deploy/helm/flotilla into plain manifests without a `helm` binary, for the default
// values (deploy/manifests/flotilla.yaml) and the federated tier (flotilla-federated.yaml).
// It implements only this subset of Helm's Go templating, which the chart's templates keep to:
//   {{ .Values.a.b }}  {{ .Release.Name }}  {{ .Release.Namespace }}  {{ .Chart.Name }}
//   {{ .Chart.Version }}  {{ .Chart.AppVersion }}   with an optional `| quote`
//   {{ if PATH }} / {{ if not PATH }} … {{ else }} … {{ end }}   (nestable)
//   {{/* comments */}}   and the `{{-` / `-}}` whitespace trims.
// Anything else is an error, so a template cannot silently render differently under helm.
// Usage: node scripts/render-manifests.mjs [--check]   (--check: fail if the files are stale)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CHART_DIR = join(ROOT, 'deploy/helm/flotilla');
export const MANIFESTS_DIR = join(ROOT, 'deploy/manifests');
/** What `helm install flotilla deploy/helm/flotilla -n flotilla` would use. */
const RELEASE = { Name: 'flotilla', Namespace: 'flotilla' };

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const merge = (a, b) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = isObject(v) && isObject(a?.[k]) ? merge(a[k], v) : v;
  return out;
};

const lookup = (ctx, path, where) => {
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(path))
    throw new Error(`${where}: unsupported expression "${path}"`);
  let v = ctx;
  for (const part of path.slice(1).split('.')) v = v == null ? undefined : v[part];
  return v;
};

const truthy = (v) =>
  !(
    v === undefined ||
    v === null ||
    v === false ||
    v === 0 ||
    v === '' ||
    (isObject(v) && !Object.keys(v).length) ||
    (Array.isArray(v) && !v.length)
  );

/** Splits a template into text and actions, applying the trim markers. */
const tokenize = (src, where) => {
  const tokens = [];
  const re = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1]) text = text.replace(/\s+$/, '');
    tokens.push({ text });
    if (!m[2].startsWith('/*')) tokens.push({ action: m[2], where });
    trimNext = m[3] === '-';
    last = re.lastIndex;
  }
  let tail = src.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  tokens.push({ text: tail });
  return tokens;
};

const evaluate = (tokens, ctx) => {
  let out = '';
  // Each open `if`: whether its current branch renders, and whether its enclosing one does.
  const stack = [];
  const on = () => stack.every((f) => f.active);
  for (const t of tokens) {
    if (t.text !== undefined) {
      if (on()) out += t.text;
      continue;
    }
    const a = t.action;
    const cond = /^if\s+(not\s+)?(\S+)$/.exec(a);
    const value = /^(\S+)(\s*\|\s*quote)?$/.exec(a);
    if (cond) {
      const v = truthy(lookup(ctx, cond[2], t.where));
      stack.push({ active: cond[1] ? !v : v, taken: false });
      stack.at(-1).taken = stack.at(-1).active;
    } else if (a === 'else') {
      const f = stack.at(-1);
      if (!f) throw new Error(`${t.where}: else without if`);
      f.active = !f.taken;
      f.taken = true;
    } else if (a === 'end') {
      if (!stack.pop()) throw new Error(`${t.where}: end without if`);
    } else if (value) {
      if (!on()) continue;
      const v = lookup(ctx, value[1], t.where);
      if (v === undefined || v === null) throw new Error(`${t.where}: ${value[1]} has no value`);
      const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
      out += value[2] ? JSON.stringify(s) : s;
    } else throw new Error(`${t.where}: unsupported action "{{ ${a} }}"`);
  }
  if (stack.length) throw new Error('unclosed if');
  return out;
};

/** The chart rendered with values.yaml and then each extra values file merged over it. */
export const renderChart = (extraValues = []) => {
  const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'));
  let values = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
  for (const f of extraValues) values = merge(values, parse(readFileSync(join(CHART_DIR, f), 'utf8')));
  const ctx = {
    Values: values,
    Release: RELEASE,
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const files = readdirSync(join(CHART_DIR, 'templates'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const docs = [];
  for (const f of files) {
    const text = evaluate(tokenize(readFileSync(join(CHART_DIR, 'templates', f), 'utf8'), f), ctx);
    for (const doc of text.split(/^---\s*$/m)) {
      if (doc.trim()) docs.push(`# Source: flotilla/templates/${f}\n${doc.trim()}\n`);
    }
  }
  return `${docs.join('---\n')}`;
};

export const OUTPUTS = [
  { file: 'flotilla.yaml', values: [] },
  { file: 'flotilla-federated.yaml', values: ['values-federated.yaml'] },
];

const HEADER = '# Rendered from deploy/helm/flotilla by scripts/render-manifests.mjs; do not edit.\n';

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  let stale = false;
  for (const o of OUTPUTS) {
    const path = join(MANIFESTS_DIR, o.file);
    const text = HEADER + renderChart(o.values);
    if (check) {
      let old = '';
      try {
        old = readFileSync(path, 'utf8');
      } catch {}
      if (old !== text) {
        console.error(`${path} is stale: run node scripts/render-manifests.mjs`);
        stale = true;
      }
    } else writeFileSync(path, text);
  }
  if (stale) process.exit(1);
}

export const renderedFile = (o) => HEADER + renderChart(o.values);
