/**
 * The fleet page in a real browser: Debian's chromium (no browser download), driven by
 * puppeteer-core, against a real coordinator with twelve scripted agents over real
 * WebSockets. It signs in, sees a machine turn NotReady within a second of the
 * coordinator's own NotReady, follows a rollout (Pause and Resume as admin), and checks
 * that a read-only user has no working Pause. Screenshots at 1440x900 go to
 * .nk/test-artifacts/ui-browser/, and also to $NK_UI_SCREENSHOTS (e.g. docs/ui) when set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { buildUi } from '../scripts/lib/ui.ts';
import { nkctlOk, REPO, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { ScriptedAgent } from './harness/scripted-agent.ts';

// What the callbacks run in the page use of the DOM (this program is type-checked without lib.dom).
declare const document: { querySelector(s: string): { getAttribute(n: string): string | null } | null; querySelectorAll(s: string): { length: number }; cookie: string };
declare const localStorage: Record<string, string>;
declare const sessionStorage: Record<string, string>;
type El = { dataset: Record<string, string | undefined>; textContent: string | null; scrollIntoView(): void };

/** Debian's chromium (scripts/lib/env.sh installs it and exports NK_CHROMIUM). */
const CHROMIUM = process.env['NK_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, '.nk/test-artifacts/ui-browser');
const SCREENSHOTS = process.env['NK_UI_SCREENSHOTS'] || undefined;
const ARGS = ['--insecure', '--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1', '--max-unavailable', '6', '--fault-hold', '1'];
const ZONES = ['zone-a', 'zone-a', 'zone-a', 'zone-a', 'zone-a', 'zone-b', 'zone-b', 'zone-b', 'zone-b', 'zone-c', 'zone-c', 'zone-c'];
/** Installs the coordinator has sent an agent. */
const installs = (a: ScriptedAgent) => a.commands.filter((c) => c.kind === 'package.install').length;

describe('the fleet page in chromium', { timeout: 180_000, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (scripts/setup installs Debian's chromium)` }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let admin: string;
  let readOnly: string;
  let browser: Browser;
  let page: Page;
  const agents: ScriptedAgent[] = [];
  const measured: Record<string, number> = {};
  /** What chromium reports against the page's Content-Security-Policy, or as an error: must stay empty. */
  const consoleProblems: string[] = [];

  const api = async (pathname: string) => {
    const res = await fetch(new URL(pathname, coord.url), { headers: { Authorization: `Bearer ${admin}` } });
    return (await res.json()) as any;
  };
  const shoot = async (p: Page, name: string) => {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await p.screenshot({ path: file as `${string}.png` });
    if (SCREENSHOTS !== undefined) {
      await mkdir(path.resolve(REPO, SCREENSHOTS), { recursive: true });
      await copyFile(file, path.resolve(REPO, SCREENSHOTS, `${name}.png`));
    }
  };
  const signIn = async (p: Page, credential: string, shot?: string) => {
    await p.goto(`${coord.url}/ui/`, { waitUntil: 'domcontentloaded' });
    await p.waitForSelector('input[name=credential]');
    if (shot !== undefined) await shoot(p, shot);
    await p.type('input[name=credential]', credential);
    await p.click('button[type=submit]');
    await p.waitForSelector('[data-link="live"]', { timeout: 15_000 });
  };
  const tileState = (p: Page, machine: string) => p.$eval(`[data-machine="${machine}"]`, (e) => (e as unknown as El).dataset['state']);
  const rolloutDone = (p: Page, name: string) => p.$eval(`[data-rollout="${name}"]`, (e) => Number((e as unknown as El).dataset['done']));

  before(async () => {
    await buildUi();
    await mkdir(ARTIFACTS, { recursive: true });
    dir = await mkdtemp(path.join(tmpdir(), 'nk-ui-browser-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    readOnly = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    const { token } = JSON.parse(await nkctlOk(coord.nkctlConfig, ['token', 'create', '--uses', String(ZONES.length), '-o', 'json']));
    for (const [i, zone] of ZONES.entries()) {
      const identity = { machineId: `${i + 1}`.repeat(32), hostname: `node-${i + 1}`, addresses: [`10.0.${i >> 2}.${i + 10}`], zone, labels: { pool: i % 3 === 0 ? 'db' : 'web' } };
      const a = await ScriptedAgent.enroll({ url: coord.url, ca: '', identity }, token);
      await a.connect();
      agents.push(a);
    }
    // The agents are scripted: an artifact only has to exist for a rollout to be made.
    const file = path.join(dir, 'kubelet-1.31.3.tar.gz');
    await writeFile(file, 'kubelet 1.31.3\n');
    await nkctlOk(coord.nkctlConfig, ['artifact', 'push', file, '--package', 'kubelet', '--version', '1.31.3']);
    await waitFor('every machine Ready', async () => (await api('/v1/machines')).items.filter((m: any) => m.status.phase === 'Ready').length === ZONES.length, 30_000);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in a container: no user namespaces for the sandbox. No GPU, no first-run chatter.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1440, height: 900 });
    page.on('console', (m) => {
      // The one expected error: the page asks for its session before signing in, and gets 401.
      if (/status of 401/.test(m.text())) return;
      if (m.type() === 'error' || /Content Security Policy|Refused to/.test(m.text())) consoleProblems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => consoleProblems.push(`pageerror: ${String(err)}`));
  });

  after(async () => {
    await browser?.close();
    for (const a of agents) a.close();
    await coord?.stop();
    await writeFile(path.join(ARTIFACTS, 'measured.json'), `${JSON.stringify(measured, null, 2)}\n`).catch(() => {});
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined && dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('signs in with a credential that stays out of storage and URLs; the session cookie is HttpOnly, Secure, SameSite=Strict', async () => {
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await signIn(page, admin, 'signin');
    await page.waitForFunction((n) => document.querySelectorAll('[data-machine][data-state="ready"]').length === n, { timeout: 10_000 }, ZONES.length);
    const cookies = await browser.cookies();
    const session = cookies.find((c) => c.name === 'nk_session');
    assert.ok(session !== undefined, 'chromium kept the Secure cookie on http://127.0.0.1 (a potentially trustworthy origin)');
    assert.deepEqual([session.httpOnly, session.secure, session.sameSite], [true, true, 'Strict']);
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert.equal(storage.includes(admin.split('.')[2]!), false);
    assert.equal(storage.includes('nk_session'), false, 'the page script cannot read the cookie');
    assert.equal(requests.some((u) => u.includes(admin.split('.')[2]!)), false, 'no credential in any URL');
    assert.ok(requests.every((u) => u.startsWith(coord.url) || u.startsWith('data:')), `nothing loaded from elsewhere: ${requests.filter((u) => !u.startsWith(coord.url)).join(' ')}`);
    assert.equal(await page.$eval('[data-role]', (e) => (e as unknown as El).dataset['role']), 'admin');
  });

  test("the label filter reads selectors as nkctl -l does; an invalid one is marked and ignored", async () => {
    const box = 'input[aria-label="filter by label"]';
    const tiles = () => page.$$eval('[data-machine]', (els) => els.length);
    const filter = async (text: string) => {
      await page.click(box, { count: 3 });
      await page.keyboard.press('Backspace');
      if (text !== '') await page.type(box, text);
    };
    const db = ZONES.filter((_, i) => i % 3 === 0).length;
    await filter('pool!=db');
    await page.waitForFunction((n) => document.querySelectorAll('[data-machine]').length === n, { timeout: 5_000 }, ZONES.length - db);
    await filter('!pool');
    await page.waitForFunction(() => document.querySelectorAll('[data-machine]').length === 0, { timeout: 5_000 });
    assert.equal(await page.$eval(box, (e) => (e as unknown as { getAttribute(n: string): string | null }).getAttribute('aria-invalid')), null);
    // Half-typed: invalid, so marked and ignored (every machine), not "no match".
    await filter('pool=db,');
    await page.waitForSelector(`${box}[aria-invalid="true"]`, { timeout: 5_000 });
    assert.equal(await tiles(), ZONES.length);
    assert.match(await page.$eval('#label-filter-error', (e) => (e as unknown as El).textContent ?? ''), /has an invalid label key/);
    await filter('');
    await page.waitForFunction((n) => document.querySelectorAll('[data-machine]').length === n, { timeout: 5_000 }, ZONES.length);
    assert.equal(await page.$('#label-filter-error'), null);
  });

  test("a machine turning NotReady shows within a second of the coordinator's own NotReady", async (t) => {
    const node = agents[2]!;
    assert.equal(await tileState(page, node.name), 'ready');
    const onPage = page.waitForFunction((n) => document.querySelector(`[data-machine="${n}"]`)?.getAttribute('data-state') === 'notready', { timeout: 15_000, polling: 'raf' }, node.name).then(() => performance.now());
    node.healthy = false;
    node.report();
    // The coordinator's own judgement, read from its API as fast as it answers.
    let atCoordinator = 0;
    await waitFor('the coordinator says NotReady', async () => {
      const phase = (await api(`/v1/machines/${node.name}`)).status.phase;
      atCoordinator = performance.now();
      return phase === 'NotReady';
    }, 10_000, 10);
    const shown = await onPage;
    const latency = Math.max(0, shown - atCoordinator);
    measured['notReadyLatencyMs'] = Math.round(latency);
    t.diagnostic(`NotReady on the page ${Math.round(latency)} ms after the coordinator's API said so`);
    assert.ok(latency < 1000, `the page showed NotReady ${Math.round(latency)} ms after the coordinator`);
    await page.click(`[data-machine="${node.name}"]`);
    await page.waitForSelector(`[data-detail="${node.name}"]`);
    await page.mouse.move(0, 0);
    await shoot(page, 'fleet');
    await page.click(`[data-detail="${node.name}"] button`);
    node.healthy = true;
    node.report();
    await page.waitForFunction((n) => document.querySelector(`[data-machine="${n}"]`)?.getAttribute('data-state') === 'ready', { timeout: 10_000 }, node.name);
  });

  test("a rollout's progress moves on the page, and an admin pauses and resumes it there", async () => {
    for (const a of agents) a.answer = (f) => (f.kind === 'package.install' ? 'hold' : a.defaultAnswer(f));
    await nkctlOk(coord.nkctlConfig, ['rollout', 'create', 'kubelet-1-31-3', '--package', 'kubelet=1.31.3', '--canary', '1', '--soak', '4s', '--batches', '100', '--max-unavailable', '6']);
    await page.waitForSelector('[data-rollout="kubelet-1-31-3"]', { timeout: 10_000 });
    assert.equal(await rolloutDone(page, 'kubelet-1-31-3'), 0);
    await waitFor('the canary install sent', () => agents.some((a) => installs(a) > 0), 15_000);
    const canary = agents.find((a) => installs(a) > 0)!;
    await page.waitForSelector(`[data-step="${canary.name}"]`, { timeout: 10_000 });
    // release() answers with `answer` as it is then: the canary's install is let through, the others still held.
    canary.answer = (f) => canary.defaultAnswer(f);
    canary.release();
    // Soaking, then Succeeded: one machine done.
    await page.waitForSelector('[data-rollout="kubelet-1-31-3"][data-phase="Soaking"]', { timeout: 15_000 });
    // The machine being changed is drawn as Updating.
    await page.waitForFunction((n) => document.querySelector(`[data-machine="${n}"]`)?.getAttribute('data-state') === 'updating', { timeout: 5_000 }, canary.name);
    await shoot(page, 'rollout');
    await page.waitForFunction(() => Number(document.querySelector('[data-rollout="kubelet-1-31-3"]')?.getAttribute('data-done')) >= 1, { timeout: 20_000 });

    await page.click('[data-rollout="kubelet-1-31-3"] [data-action="pause"]');
    await page.waitForSelector('[data-rollout="kubelet-1-31-3"][data-phase="Paused"] [data-action="resume"]', { timeout: 10_000 });
    assert.equal((await api('/v1/rollouts/kubelet-1-31-3')).status.phase, 'Paused');
  });

  test('a read-only user sees no Pause, and a forced pause is refused 403', async () => {
    const context = await browser.createBrowserContext();
    try {
      const ro = await context.newPage();
      await ro.setViewport({ width: 1440, height: 900 });
      await signIn(ro, readOnly);
      await ro.waitForSelector('[data-rollout="kubelet-1-31-3"][data-phase="Paused"]', { timeout: 10_000 });
      assert.equal(await ro.$eval('[data-role]', (e) => (e as unknown as El).dataset['role']), 'read-only');
      assert.equal(await ro.$$eval('[data-action]', (els) => els.length), 0, 'no Pause or Resume button for a read-only user');
      const forced = await ro.evaluate(async () => {
        const s = (await (await fetch('/v1/sessions/current')).json()) as { csrfToken: string };
        const r = await fetch('/v1/rollouts/kubelet-1-31-3/resume', { method: 'POST', headers: { 'X-Nodekeeper-CSRF': s.csrfToken } });
        return { status: r.status, code: ((await r.json()) as { code: string }).code };
      });
      assert.deepEqual(forced, { status: 403, code: 'NK_AUTH_FORBIDDEN' });
      assert.equal((await api('/v1/rollouts/kubelet-1-31-3')).status.phase, 'Paused');
    } finally {
      await context.close();
    }
  });

  test('the admin resumes; the rollout completes on the page; a repair story shows under remediation', async () => {
    for (const a of agents) a.answer = (f) => a.defaultAnswer(f);
    await page.click('[data-rollout="kubelet-1-31-3"] [data-action="resume"]');
    for (const a of agents) a.release();
    await waitFor('every install answered', () => {
      for (const a of agents) a.release();
      return agents.every((a) => a.versions['kubelet'] === '1.31.3');
    }, 60_000, 200);
    await page.waitForFunction((n) => Number(document.querySelector('[data-rollout="kubelet-1-31-3"]')?.getAttribute('data-done')) === n, { timeout: 60_000 }, ZONES.length);
    // The package distribution follows: every machine's kubelet at 1.31.3.
    await page.waitForFunction((n) => document.querySelector('[data-package="kubelet"] [data-version="1.31.3"]')?.getAttribute('data-count') === String(n), { timeout: 10_000 }, ZONES.length);

    // A repair at once (the default rule waits 60 s): restart the kubelet, which the scripted agent never answers.
    const rule = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-unhealthy' }, spec: { fault: 'KubeletUnhealthy', forSeconds: 0, ladder: [{ action: 'RestartService', target: 'kubelet.service', timeoutSeconds: 600 }, { action: 'CordonAndNotify' }], maxAttemptsPerMachine: 3, attemptWindowSeconds: 86400, cooldownSeconds: 600, dryRun: false } };
    const put = await fetch(new URL('/v1/remediationrules/kubelet-unhealthy', coord.url), { method: 'PUT', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' }, body: JSON.stringify(rule) });
    assert.ok(put.status === 200 || put.status === 201, await put.text());
    const sick = agents[6]!;
    // Its repair never ends: the step stays Running on the page.
    sick.answer = (f) => (f.kind === 'package.install' ? sick.defaultAnswer(f) : 'hold');
    sick.healthy = false;
    sick.report();
    await page.waitForSelector(`[data-remediation="${sick.name}"][data-phase="Running"]`, { timeout: 30_000 });
    await page.click(`[data-machine="${sick.name}"]`);
    await page.waitForSelector(`[data-detail="${sick.name}"]`);
    await page.mouse.move(0, 0);
    await shoot(page, 'remediation');
    // The strict CSP broke nothing: no violation, no script error, all along.
    assert.deepEqual(consoleProblems, []);
  });
});
