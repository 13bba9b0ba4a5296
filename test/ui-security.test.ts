/**
 * The fleet page's sign-in and safety (docs/ui.md, "Security"), against a real
 * coordinator on port 0 over plain HTTP: the session cookie's flags and expiry,
 * refusals of expired, unknown, revoked and hostile cookies, CSRF and Origin checks on
 * cookie-authenticated writes, no credential in a URL, and the headers on every /ui/
 * answer. Each refusal is checked to change nothing (remediation's switch, the sessions).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { buildUi } from '../scripts/lib/ui.ts';
import { startCoordinator, type CoordinatorProc } from './harness/processes.ts';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const TTL_SECONDS = 3600;

interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string; json: any }

describe('fleet page sign-in and safety', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let admin: string;
  let readOnly: string;

  const call = (method: string, target: string, headers: Record<string, string> = {}) => new Promise<Answer>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: coord.port, method, path: target, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: any = null;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON (the page, a 304)
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
  /** Bytes exactly as given (node's client refuses some of these headers). */
  const raw = (head: string) => new Promise<{ status: number; head: string; body: string }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(coord.port, '127.0.0.1', () => s.write(Buffer.from(`${head}\r\nHost: 127.0.0.1:${coord.port}\r\nConnection: close\r\n\r\n`, 'latin1')));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const t = Buffer.concat(chunks).toString('latin1');
      const [h = '', body = ''] = t.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1] ?? 0), head: h, body });
    });
  });
  const db = <T>(sql: string, ...params: unknown[]): T[] => {
    const d = new Database(path.join(coord.dataDir, 'state.db'), { fileMustExist: true });
    try {
      return /^\s*select/i.test(sql) ? (d.prepare(sql).all(...params) as T[]) : (d.prepare(sql).run(...params), []);
    } finally {
      d.close();
    }
  };
  const sessionRows = () => db<{ n: number }>('SELECT count(*) AS n FROM ui_sessions')[0]!.n;
  const signIn = async (credential: string) => {
    const r = await call('POST', '/v1/sessions', { Authorization: `Bearer ${credential}` });
    assert.equal(r.status, 201, r.text);
    const setCookie = r.headers['set-cookie']?.[0] ?? '';
    const value = /^nk_session=([^;]+);/.exec(setCookie)?.[1];
    assert.ok(value !== undefined, setCookie);
    return { cookie: `nk_session=${value}`, setCookie, csrf: r.json.csrfToken as string, body: r.json };
  };
  const paused = async () => (await call('GET', '/v1/remediations', { Authorization: `Bearer ${admin}` })).json.status.paused as boolean;
  const host = () => `127.0.0.1:${coord.port}`;

  before(async () => {
    // The page's files (a no-op when scripts/setup built them from these sources).
    await buildUi();
    dir = await mkdtemp(path.join(tmpdir(), 'nk-ui-security-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--insecure', '--session-ttl', String(TTL_SECONDS)]);
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    readOnly = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
  });

  after(async () => {
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('signing in sets an HttpOnly, Secure, SameSite=Strict cookie with the configured expiry, and it reads the API', async () => {
    const started = Date.now();
    const s = await signIn(admin);
    assert.match(s.setCookie, /^nk_session=nks\.[A-Za-z0-9_-]{43}; HttpOnly; Secure; SameSite=Strict; Path=\/; Max-Age=3600$/);
    assert.equal(s.body.role, 'admin');
    assert.ok(Math.abs(Date.parse(s.body.expiresAt) - (started + TTL_SECONDS * 1000)) < 30_000, s.body.expiresAt);
    assert.match(s.csrf, /^[A-Za-z0-9_-]{43}$/);
    // Only the hash is stored: the cookie's secret is nowhere in the file.
    const secret = s.cookie.split('.')[1]!;
    assert.equal((await readFile(path.join(coord.dataDir, 'state.db'))).includes(secret), false);
    const machines = await call('GET', '/v1/machines', { Cookie: s.cookie });
    assert.equal(machines.status, 200, machines.text);
    assert.equal(machines.json.kind, 'MachineList');
    const current = await call('GET', '/v1/sessions/current', { Cookie: `theme=dark; ${s.cookie}; other=1` });
    assert.equal(current.status, 200, current.text);
    assert.deepEqual([current.json.role, current.json.csrfToken, current.json.expiresAt], ['admin', s.csrf, s.body.expiresAt]);
  });

  test('expired and unknown sessions are refused', async () => {
    const s = await signIn(readOnly);
    db('UPDATE ui_sessions SET expires_at = ? WHERE expires_at > ?', Date.now() - 1000, Date.now() + (TTL_SECONDS - 120) * 1000);
    const expired = await call('GET', '/v1/machines', { Cookie: s.cookie });
    assert.deepEqual([expired.status, expired.json.code], [401, 'NK_AUTH_SESSION_EXPIRED']);
    const unknown = await call('GET', '/v1/machines', { Cookie: `nk_session=nks.${'A'.repeat(43)}` });
    assert.deepEqual([unknown.status, unknown.json.code], [401, 'NK_AUTH_SESSION_INVALID']);
    const notOurs = await call('GET', '/v1/machines', { Cookie: 'nk_session=hello' });
    assert.deepEqual([notOurs.status, notOurs.json.code], [401, 'NK_AUTH_SESSION_INVALID']);
  });

  test('a read-only session cannot pause: 403 with or without the CSRF token, and nothing changes', async () => {
    const s = await signIn(readOnly);
    assert.equal(s.body.role, 'read-only');
    for (const target of ['/v1/remediations/pause', '/v1/rollouts/any-rollout/pause']) {
      const r = await call('POST', target, { Cookie: s.cookie, 'X-Nodekeeper-CSRF': s.csrf });
      assert.deepEqual([r.status, r.json.code], [403, 'NK_AUTH_FORBIDDEN'], target);
    }
    assert.equal(await paused(), false);
  });

  test('an admin session needs the CSRF header to change anything; with it, the change is made', async () => {
    const s = await signIn(admin);
    for (const csrf of [null, '', 'x'.repeat(43), s.csrf.slice(0, -1), 'y'.repeat(5000)]) {
      const r = await call('POST', '/v1/remediations/pause', { Cookie: s.cookie, ...(csrf === null ? {} : { 'X-Nodekeeper-CSRF': csrf }) });
      assert.deepEqual([r.status, r.json.code], [403, 'NK_AUTH_CSRF'], `csrf ${String(csrf).slice(0, 20)}`);
      assert.equal(await paused(), false);
    }
    // Another session's token is no good either.
    const other = await signIn(admin);
    const crossed = await call('POST', '/v1/remediations/pause', { Cookie: s.cookie, 'X-Nodekeeper-CSRF': other.csrf });
    assert.deepEqual([crossed.status, crossed.json.code], [403, 'NK_AUTH_CSRF']);
    const ok = await call('POST', '/v1/remediations/pause', { Cookie: s.cookie, 'X-Nodekeeper-CSRF': s.csrf, Origin: `http://${host()}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(await paused(), true);
    const back = await call('POST', '/v1/remediations/resume', { Cookie: s.cookie, 'X-Nodekeeper-CSRF': s.csrf });
    assert.equal(back.status, 200, back.text);
    assert.equal(await paused(), false);
    // A bearer request needs no token (nkctl).
    assert.equal((await call('GET', '/v1/sessions/current', { Authorization: `Bearer ${admin}` })).json.code, 'NK_AUTH_SESSION_REQUIRED');
  });

  test('a cookie-authenticated request or a sign-in from another origin is refused', async () => {
    const s = await signIn(admin);
    for (const origin of ['http://evil.example', `https://${host()}`, 'null', `http://${host()}.evil.example`, `http://localhost:${coord.port}`]) {
      const w = await call('POST', '/v1/remediations/pause', { Cookie: s.cookie, 'X-Nodekeeper-CSRF': s.csrf, Origin: origin });
      assert.deepEqual([w.status, w.json.code], [403, 'NK_AUTH_ORIGIN'], origin);
      const r = await call('GET', '/v1/machines', { Cookie: s.cookie, Origin: origin });
      assert.deepEqual([r.status, r.json.code], [403, 'NK_AUTH_ORIGIN'], origin);
    }
    assert.equal(await paused(), false);
    const rows = sessionRows();
    const login = await call('POST', '/v1/sessions', { Authorization: `Bearer ${admin}`, Origin: 'http://evil.example' });
    assert.deepEqual([login.status, login.json.code, login.headers['set-cookie']], [403, 'NK_AUTH_ORIGIN', undefined]);
    assert.equal(sessionRows(), rows);
  });

  test('a credential in the URL is refused at sign-in and ignored elsewhere', async () => {
    const rows = sessionRows();
    for (const q of [`credential=${admin}`, `access_token=${admin}`, 'x=1']) {
      const r = await call('POST', `/v1/sessions?${q}`, q === 'x=1' ? { Authorization: `Bearer ${admin}` } : {});
      assert.deepEqual([r.status, r.json.code, r.headers['set-cookie']], [400, 'NK_AUTH_CREDENTIAL_IN_URL', undefined], q);
    }
    assert.equal(sessionRows(), rows);
    for (const q of [`access_token=${admin}`, `token=${admin}`, `nk_session=${admin}`]) {
      const r = await call('GET', `/v1/machines?${q}`);
      assert.deepEqual([r.status, r.json.code], [401, 'NK_AUTH_CREDENTIAL_MISSING'], q);
    }
    const noHeader = await call('POST', '/v1/sessions');
    assert.deepEqual([noHeader.status, noHeader.json.code], [401, 'NK_AUTH_CREDENTIAL_MISSING']);
    const wrong = await call('POST', '/v1/sessions', { Authorization: `Bearer ${admin.slice(0, -2)}xx` });
    assert.deepEqual([wrong.status, wrong.json.code], [401, 'NK_AUTH_CREDENTIAL_INVALID']);
    assert.equal(sessionRows(), rows);
  });

  test("a revoked credential's sessions stop working at once; signing out ends a session", async () => {
    const created = await new Promise<any>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: coord.port, method: 'POST', path: '/v1/apicredentials', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c));
        res.on('end', () => resolve(JSON.parse(t)));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ role: 'admin', description: 'ui-security' }));
    });
    const s = await signIn(created.credential);
    assert.equal((await call('GET', '/v1/machines', { Cookie: s.cookie })).status, 200);
    const revoked = await call('DELETE', `/v1/apicredentials/${created.id}`, { Authorization: `Bearer ${admin}` });
    assert.equal(revoked.status, 200, revoked.text);
    const after = await call('GET', '/v1/machines', { Cookie: s.cookie });
    assert.deepEqual([after.status, after.json.code], [401, 'NK_AUTH_SESSION_INVALID']);
    const w = await call('POST', '/v1/remediations/pause', { Cookie: s.cookie, 'X-Nodekeeper-CSRF': s.csrf });
    assert.deepEqual([w.status, w.json.code], [401, 'NK_AUTH_SESSION_INVALID']);
    assert.equal(await paused(), false);

    const t = await signIn(readOnly);
    const noToken = await call('DELETE', '/v1/sessions/current', { Cookie: t.cookie });
    assert.deepEqual([noToken.status, noToken.json.code], [403, 'NK_AUTH_CSRF']);
    const out = await call('DELETE', '/v1/sessions/current', { Cookie: t.cookie, 'X-Nodekeeper-CSRF': t.csrf });
    assert.equal(out.status, 200, out.text);
    assert.match(out.headers['set-cookie']?.[0] ?? '', /^nk_session=; HttpOnly; Secure; SameSite=Strict; Path=\/; Max-Age=0$/);
    assert.equal((await call('GET', '/v1/machines', { Cookie: t.cookie })).json.code, 'NK_AUTH_SESSION_INVALID');
  });

  test('hostile cookies get a specific code and change nothing; agent routes never take a cookie', async () => {
    const s = await signIn(admin);
    const rows = sessionRows();
    const cases: Array<[string, string, number, string]> = [
      ['huge', `nk_session=${'a'.repeat(9000)}`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['huge header of other cookies', `${Array.from({ length: 40 }, (_, i) => `c${i}=${'v'.repeat(250)}`).join('; ')}; ${s.cookie}`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['many cookies', `${Array.from({ length: 100 }, (_, i) => `c${i}=1`).join('; ')}; ${s.cookie}`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['twice', `${s.cookie}; nk_session=nks.${'B'.repeat(43)}`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['twice, the same', `${s.cookie}; ${s.cookie}`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['percent-encoded', `nk_session=${encodeURIComponent(`${s.cookie.slice(11)}"`)}`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['quoted', `nk_session="${s.cookie.slice(11)}"`, 400, 'NK_AUTH_COOKIE_INVALID'],
      ['empty', 'nk_session=', 400, 'NK_AUTH_COOKIE_INVALID'],
      ['not latin letters', `nk_session=nks.${'\u00e9'.repeat(43)}`, 400, 'NK_AUTH_COOKIE_INVALID'],
    ];
    for (const [what, cookie, status, code] of cases) {
      const r = await raw(`POST /v1/remediations/pause HTTP/1.1\r\nCookie: ${cookie}\r\nX-Nodekeeper-CSRF: ${s.csrf}`);
      assert.equal(r.status, status, `${what}: ${r.head}`);
      assert.equal(JSON.parse(r.body).code, code, what);
    }
    // Raw bytes that are not text at all.
    const bytes = await raw(`GET /v1/machines HTTP/1.1\r\nCookie: nk_session=nks.\u00ff\u00fe\u0080${'x'.repeat(40)}`);
    assert.deepEqual([bytes.status, JSON.parse(bytes.body).code], [400, 'NK_AUTH_COOKIE_INVALID']);
    assert.equal(await paused(), false);
    assert.equal(sessionRows(), rows);
    // The agent path and artifact downloads take a bearer credential only.
    const download = await call('GET', `/v1/artifacts/sha256/${'a'.repeat(64)}`, { Cookie: s.cookie });
    assert.deepEqual([download.status, download.json.code], [401, 'NK_AUTH_CREDENTIAL_MISSING']);
  });

  test('every /ui/ answer carries the CSP and security headers; assets are immutable, the page revalidated, anything else 404', async () => {
    const page = await call('GET', '/ui/', { Accept: 'text/html' });
    const answers: Array<[string, Answer]> = [['page', page]];
    assert.equal(page.status, 200, page.text);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['cache-control'], 'no-cache');
    // Nothing from elsewhere: every script and stylesheet is ours, relative.
    const refs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.length >= 2 && refs.every((r) => r.startsWith('./assets/') || r === 'data:,'), refs.join(' '));
    assert.equal(/<script>|style=/.test(page.text), false, 'no inline script or style');
    const js = refs.find((r) => r.endsWith('.js'))!;
    const asset = await call('GET', `/ui/${js.slice(2)}`);
    assert.equal(asset.status, 200);
    assert.equal(asset.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.doesNotMatch(asset.text, /https?:\/\/(?!www\.w3\.org)[a-z]/i, 'the bundle refers to no other site');
    const again = await call('GET', `/ui/${js.slice(2)}`, { 'If-None-Match': String(asset.headers.etag) });
    assert.equal(again.status, 304);
    answers.push(['asset', asset], ['304', again]);
    answers.push(
      ['missing', await call('GET', '/ui/assets/nope.js')],
      ['redirect', await call('GET', '/ui')],
      ['post', await call('POST', '/ui/')],
      ['head', await call('HEAD', '/ui/')],
    );
    for (const [what, a] of answers) {
      assert.equal(a.headers['content-security-policy'], CSP, what);
      assert.equal(a.headers['x-content-type-options'], 'nosniff', what);
      assert.equal(a.headers['referrer-policy'], 'no-referrer', what);
      assert.equal(a.headers['x-frame-options'], 'DENY', what);
    }
    const byName = Object.fromEntries(answers.map(([w, a]) => [w, a]));
    assert.deepEqual([byName['missing']!.status, byName['missing']!.json.code], [404, 'NK_HTTP_NOT_FOUND']);
    // A dot-segment leaves /ui/ (URL rules): it is the API's path, with its own credential check.
    const dots = await call('GET', '/ui/../v1/machines');
    assert.deepEqual([dots.status, dots.json.code], [401, 'NK_AUTH_CREDENTIAL_MISSING']);
    const encoded = await call('GET', '/ui/%2e%2e/state.db');
    assert.deepEqual([encoded.status, encoded.json.code], [404, 'NK_HTTP_NOT_FOUND']);
    assert.deepEqual([byName['redirect']!.status, byName['redirect']!.headers.location], [308, '/ui/']);
    assert.deepEqual([byName['post']!.status, byName['post']!.json.code], [405, 'NK_HTTP_METHOD_NOT_ALLOWED']);
  });
});
