// The dependency rule of DESIGN §7, checked on the import graph of src/: core imports only
// core; app sees core (its ports) and never an adapter, the configuration or the
// composition root; the CLI reaches adapters only through the composition root (src/main).
// Every import counts: static, type-only, re-exports and dynamic import().
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

interface Edge {
  from: string;
  to: string;
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });

// `import … from '…'`, `export … from '…'` (statements end at their semicolon), side-effect
// `import '…'`, and `import('…')`.
const SPECIFIERS = [
  /(?:^|[\n;])\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /(?:^|[\n;])\s*import\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** Every edge from a file in src/ to another file in src/, as paths relative to src/. */
const importGraph = (): Edge[] => {
  const edges: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const re of SPECIFIERS) {
      for (const m of text.matchAll(re)) {
        const spec = m[1];
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(SRC + sep)) continue;
        edges.push({ from: relative(SRC, file), to: relative(SRC, target) });
      }
    }
  }
  return edges;
};

const layer = (path: string): string => path.split(sep)[0];

interface Rule {
  from: string;
  forbidden: string[];
}

const RULES: Rule[] = [
  { from: 'core', forbidden: ['app', 'adapters', 'config', 'main', 'http', 'worker', 'cli'] },
  { from: 'app', forbidden: ['adapters', 'config', 'main'] },
  { from: 'cli', forbidden: ['adapters'] },
];

describe('dependency rules', () => {
  const edges = importGraph();

  it('sees the whole graph (the composition root wires adapters; the CLI goes through it)', () => {
    expect(edges.length).toBeGreaterThan(200);
    const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
    expect(has(join('main', 'manager.ts'), join('adapters', 'store-postgres', 'postgres-store.ts'))).toBe(
      true,
    );
    // A dynamic import counts too.
    expect(has(join('main', 'manager.ts'), join('adapters', 'oidc', 'token-verifier.ts'))).toBe(true);
    expect(has(join('cli', 'commands', 'doctor.ts'), join('main', 'tier-tools.ts'))).toBe(true);
    expect(has(join('app', 'credentials', 'refresh-tokens.ts'), join('core', 'ports.ts'))).toBe(true);
  });

  // Outputs reach the job use cases as streams (ExecutionOutput.open()): the executor owns its
  // output dir and checks what it opens, so nothing there reads host files by path.
  it('src/app/jobs does not import node:fs', () => {
    const jobs = join(SRC, 'app', 'jobs');
    const broken = sourceFiles(jobs).flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      return SPECIFIERS.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]))
        .filter((spec) => /^(node:)?fs(\/|$)/.test(spec))
        .map((spec) => `${relative(SRC, file)} → ${spec}`);
    });
    expect(sourceFiles(jobs).length).toBeGreaterThan(3);
    expect(broken).toEqual([]);
  });

  for (const rule of RULES) {
    it(`src/${rule.from} imports nothing from ${rule.forbidden.map((l) => `src/${l}`).join(', ')}`, () => {
      const broken = edges
        .filter((e) => layer(e.from) === rule.from && rule.forbidden.includes(layer(e.to)))
        .map((e) => `${e.from} → ${e.to}`);
      expect(broken).toEqual([]);
    });
  }
});
