/**
 * No import cycles in product code (docs/style.md, "Layout shows the architecture"): the
 * relative imports of agent/, coordinator/ and packages/ sources, and the `@nodekeeper/*`
 * imports between packages, form a graph without loops. Imports are read with the
 * TypeScript compiler's own pre-processor (static, dynamic and type-only imports, and
 * re-exports all count: a type-only loop still ties two modules into one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { REPO } from './harness/processes.ts';

type Graph = Map<string, string[]>;

/** Where `@nodekeeper/<name>[/<sub>]` resolves, read from each package's own `exports`. */
function packageEntries(): Map<string, string> {
  const entries = new Map<string, string>();
  for (const dir of ['packages/common', 'packages/protocol', 'packages/api']) {
    const manifest = path.join(REPO, dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; exports?: Record<string, string> };
    for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
      entries.set(sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`, path.posix.join(dir, target));
    }
  }
  return entries;
}

/** The import graph of every non-test .ts source file of the product, by repo-relative path. */
function importGraph(): Graph {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'packages', 'agent', 'coordinator'], { cwd: REPO, encoding: 'utf8' })
    .split('\n')
    .filter((f) => /\/src\/.*\.ts$/.test(f) && !f.endsWith('.test.ts') && !f.endsWith('.d.ts') && existsSync(path.join(REPO, f)));
  const known = new Set(files);
  const packages = packageEntries();
  const graph: Graph = new Map();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(path.join(REPO, file), 'utf8'), true, true);
    const targets = new Set<string>();
    for (const { fileName } of info.importedFiles) {
      const target = fileName.startsWith('.') ? path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName)) : packages.get(fileName);
      if (target !== undefined && known.has(target)) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Graph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** One concrete loop inside a component, `a -> b -> ... -> a`, so the message names the arrows to cut. */
function loopThrough(graph: Graph, component: string[]): string {
  const members = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const chain = [v];
        while (chain[0] !== start) chain.unshift(previous.get(chain[0]!)!);
        return [...chain, start].join(' -> ');
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return component.join(', ');
}

test('product sources have no import cycle', () => {
  const graph = importGraph();
  const found = cycles(graph);
  assert.deepEqual(
    found.map((c) => loopThrough(graph, c)),
    [],
    `import cycles:\n${found.map((c) => `  ${loopThrough(graph, c)}\n    (all of: ${c.join(', ')})`).join('\n')}`,
  );
});

test('the scan reads the graph (guards against a walk that silently sees no imports)', () => {
  const graph = importGraph();
  assert.ok(graph.size > 150, `only ${graph.size} files`);
  assert.ok(graph.get('agent/src/probes/service.ts')?.includes('agent/src/services/supervisor.ts'));
  assert.ok(graph.get('agent/src/agent.ts')?.some((f) => f.startsWith('packages/protocol/src/')), 'package imports are followed');
});

test('the cycle finder finds a loop, a self-import, and names the arrows', () => {
  const graph: Graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts', 'd.ts']],
    ['d.ts', []],
    ['e.ts', ['e.ts']],
  ]);
  assert.deepEqual(cycles(graph), [['a.ts', 'b.ts', 'c.ts'], ['e.ts']]);
  assert.equal(loopThrough(graph, ['a.ts', 'b.ts', 'c.ts']), 'a.ts -> b.ts -> c.ts -> a.ts');
  assert.deepEqual(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', []]])), []);
});
