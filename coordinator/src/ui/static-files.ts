/**
 * Serves the fleet page's built files (scripts/lib/ui.ts builds them into
 * coordinator/ui/dist; a release ships them as lib/ui/). index.html is revalidated on
 * every load; assets/ names carry a content hash, so they are cached for a year. Any
 * other path under /ui/ is a 404. With no build, a 503 page says how to make one.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@nodekeeper/common';
import { send, type Route } from '../server/http-util.ts';
import { UiErrorCode } from './codes.ts';

/** Where the files may be: beside a release's bundle (lib/ui/), or the checkout's build. */
export const UI_DIRS: readonly string[] = [
  fileURLToPath(new URL('./ui/', import.meta.url)),
  fileURLToPath(new URL('../../ui/dist/', import.meta.url)),
];

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  readonly immutable: boolean;
}

/** The build's files by URL path, or null when there is no build. Pure of the request. */
export function loadUiFiles(dir: string): Map<string, StaticFile> | null {
  if (!existsSync(path.join(dir, 'index.html'))) return null;
  const files = new Map<string, StaticFile>();
  const add = (rel: string, immutable: boolean) => {
    const body = readFileSync(path.join(dir, rel));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    files.set(`/ui/${rel}`, { body, type: TYPES[path.extname(rel)] ?? 'application/octet-stream', etag, immutable });
  };
  add('index.html', false);
  const assets = path.join(dir, 'assets');
  if (existsSync(assets)) for (const name of readdirSync(assets)) add(`assets/${name}`, true);
  return files;
}

const NOT_BUILT_PAGE = `<!doctype html><meta charset="utf-8"><title>nodekeeper: fleet page not built</title>
<h1>The fleet page is not built</h1>
<p><code>${UiErrorCode.notBuilt}</code>: this coordinator has no fleet page files.
In a checkout, run <code>scripts/setup</code> (or <code>node scripts/lib/ui.ts</code>) to build them into
<code>coordinator/ui/dist/</code>; a release tarball ships them in <code>lib/ui/</code>. The API is unaffected.</p>
`;

/** GET and HEAD of /ui and everything under it. */
export function uiRoutes(log: Logger, dirs: readonly string[] = UI_DIRS): Route[] {
  let files: Map<string, StaticFile> | null = null;
  const current = () => {
    // Looked for again until found: a build made after the start is picked up.
    if (files === null) {
      for (const dir of dirs) {
        files = loadUiFiles(dir);
        if (files !== null) {
          log.info({ dir, files: files.size }, 'fleet page files loaded');
          break;
        }
      }
    }
    return files;
  };
  const serve = (res: ServerResponse, ifNoneMatch: string | undefined, accept: string | undefined, pathname: string) => {
    if (pathname === '/ui') {
      res.writeHead(308, { Location: '/ui/', 'Content-Length': 0 });
      res.end();
      return;
    }
    const all = current();
    if (all === null) {
      // A page for a browser; the API's {code, message} for anything else (curl, probes).
      res.setHeader('X-Nodekeeper-Code', UiErrorCode.notBuilt);
      if (accept?.includes('text/html') === true) send(res, 503, NOT_BUILT_PAGE, 'text/html; charset=utf-8');
      else send(res, 503, { code: UiErrorCode.notBuilt, message: 'the fleet page is not built: run scripts/setup (or node scripts/lib/ui.ts) in the checkout; a release ships it in lib/ui/' });
      return;
    }
    const file = all.get(pathname === '/ui/' ? '/ui/index.html' : pathname);
    if (file === undefined) {
      send(res, 404, { code: 'NK_HTTP_NOT_FOUND', message: `no such file of the fleet page: ${pathname.slice(0, 200)}` });
      return;
    }
    const headers = {
      'Content-Type': file.type,
      ETag: file.etag,
      'Cache-Control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (ifNoneMatch === file.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': file.body.length });
    res.end(file.body);
  };
  return (['GET', 'HEAD'] as const).map((method) => ({
    method, pattern: /^\/ui(\/.*)?$/, name: method === 'GET' ? 'ui' : 'ui-head', access: null,
    handler: ({ req, res, url }) => serve(res, req.headers['if-none-match'], req.headers.accept, url.pathname),
  }));
}
