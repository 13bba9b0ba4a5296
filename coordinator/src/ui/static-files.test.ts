import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@nodekeeper/common';
import { uiRoutes } from './static-files.ts';

/** Serves uiRoutes(dirs) on port 0 and GETs `target`. */
async function get(dirs: string[], target: string, headers: Record<string, string> = {}) {
  const [route] = uiRoutes(createLogger({ name: 'test', level: 'silent' }), dirs);
  const server = http.createServer((req, res) => void route!.handler({ req, res, params: [], url: new URL(req.url ?? '/', 'http://x'), principal: null }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${target}`, { headers });
    return { status: res.status, headers: res.headers, text: await res.text() };
  } finally {
    server.close();
  }
}

test('without a build, /ui/ is a clear 503 NK_UI_NOT_BUILT: a page for browsers, JSON for the rest', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'nk-ui-none-'));
  try {
    const page = await get([empty], '/ui/', { Accept: 'text/html,application/xhtml+xml' });
    assert.equal(page.status, 503);
    assert.equal(page.headers.get('x-nodekeeper-code'), 'NK_UI_NOT_BUILT');
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.text, /scripts\/setup/);
    const api = await get([empty], '/ui/assets/app.js');
    assert.equal(api.status, 503);
    assert.equal(JSON.parse(api.text).code, 'NK_UI_NOT_BUILT');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('a build made after the start is picked up; files outside the build are 404', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nk-ui-late-'));
  try {
    const [route] = uiRoutes(createLogger({ name: 'test', level: 'silent' }), [dir]);
    assert.ok(route !== undefined);
    assert.equal((await get([dir], '/ui/')).status, 503);
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(path.join(dir, 'assets', 'app-ABC.js'), 'export {}');
    writeFileSync(path.join(dir, 'secret.txt'), 'not served');
    const page = await get([dir], '/ui/');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.equal((await get([dir], '/ui/assets/app-ABC.js')).headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal((await get([dir], '/ui/secret.txt')).status, 404);
    assert.equal((await get([dir], '/ui/index.html')).status, 200);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
