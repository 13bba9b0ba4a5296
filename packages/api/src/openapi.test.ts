import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openApiDocument } from './openapi.ts';
import { PATHS, SCHEMAS, samplePath } from './paths.ts';

type Op = { operationId: string; parameters?: Array<{ name: string; in: string }>; requestBody?: unknown; responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> };

test('every path parameter of a template is declared, and every declared one is in the template', () => {
  for (const e of PATHS) {
    const inTemplate = [...e.path.matchAll(/\{([a-zA-Z]+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(inTemplate, Object.keys(e.params ?? {}).sort(), `${e.method} ${e.path}`);
    assert.doesNotMatch(samplePath(e), /[{}]/);
  }
});

test('one row per method and path; operationIds are unique', () => {
  const keys = PATHS.map((e) => `${e.method} ${e.path}`);
  assert.equal(new Set(keys).size, keys.length);
  const doc = openApiDocument() as { paths: Record<string, Record<string, Op>> };
  const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
  assert.equal(ids.length, PATHS.length);
  assert.equal(new Set(ids).size, ids.length);
});

test('every $ref of the document names a component schema, and the document is plain JSON', () => {
  const doc = openApiDocument();
  const text = JSON.stringify(doc);
  assert.deepEqual(JSON.parse(text), doc, 'no undefined, no symbols that JSON would drop silently');
  const refs = [...text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length > 40);
  for (const r of refs) assert.ok(r in SCHEMAS, `dangling $ref ${r}`);
});

test('operations say who may call them, and only access none goes without the bearer scheme', () => {
  const doc = openApiDocument() as { paths: Record<string, Record<string, Op & { security: unknown[]; 'x-nodekeeper-access': string }>> };
  for (const e of PATHS) {
    const op = doc.paths[e.path]?.[e.method.toLowerCase()];
    assert.ok(op !== undefined, `${e.method} ${e.path}`);
    assert.equal(op['x-nodekeeper-access'], e.access);
    assert.equal(op.security.length, e.access === 'none' ? 0 : 1);
  }
});
