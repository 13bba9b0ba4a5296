/**
 * The fleet page with a large fleet (docs/ui.md, "At scale"): a real coordinator, N
 * simulated agents (bench/sim; some flapping, so events keep coming), Debian's chromium.
 * Measures, from the sign-in click: the time until the page shows every machine (tiles,
 * or the per-zone bars above 2,000); then, over a window while the fleet churns, the
 * frame intervals (p50, p99, max), long tasks, the machine list's rows in the DOM after a
 * scroll to the middle (virtualised: a few dozen whatever N), and the JS heap.
 *
 *   node bench/ui-fleet.ts [--machines 10000] [--window 20]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { buildUi } from '../scripts/lib/ui.ts';
import { createToken } from '../test/harness/processes.ts';
import { coordinatorServer } from './lib/servers.ts';
import { percentile, record } from './lib/results.ts';
import { enrollFleet, SimFleet } from './sim/fleet.ts';
import { defaultProfile } from './sim/sim-agent.ts';

// The callbacks below run in the page (this program is type-checked without lib.dom).
declare const document: { querySelectorAll(s: string): { length: number }; querySelector(s: string): { scrollTop: number; scrollHeight: number; dispatchEvent(e: unknown): void } | null };
declare const performance: { now(): number; memory?: { usedJSHeapSize: number } };
declare const requestAnimationFrame: (f: (t: number) => void) => void;
declare const PerformanceObserver: new (cb: (list: { getEntries(): Array<{ duration: number }> }) => void) => { observe(o: { type: string; buffered: boolean }): void };
declare const Event: new (type: string) => unknown;

const { values } = parseArgs({ options: { machines: { type: 'string', default: '10000' }, window: { type: 'string', default: '20' } } });
const n = Number(values.machines);
const windowS = Number(values.window);
const say = (m: string) => process.stderr.write(`==> ${m}\n`);

await buildUi();
const dir = await mkdtemp(path.join(tmpdir(), 'nk-bench-ui-'));
const coord = await coordinatorServer(path.join(dir, 'coordinator'), ['--heartbeat-interval', '10000']);
let fleet: SimFleet | null = null;
const browser = await puppeteer.launch({ executablePath: process.env['NK_CHROMIUM'] ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  const { token } = await createToken(coord.proc.nkctlConfig, n);
  say(`enrolling ${n} simulated machines`);
  const specs = await enrollFleet(coord.url, token, n);
  // 2 % flapping every 20 s: a steady trickle of MODIFIED events for the page.
  fleet = await SimFleet.start({ server: coord.url, specs, profile: { ...defaultProfile, flappingShare: 0.02, flapPeriodMs: 20_000 } });
  await fleet.waitConnected(n);
  const admin = (await readFile(path.join(coord.proc.dataDir, 'admin.credential'), 'utf8')).trim();

  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 900 });
  await page.goto(`${coord.url}/ui/`);
  await page.type('input[name=credential]', admin);
  const started = Date.now();
  await page.click('button[type=submit]');
  await page.waitForFunction((count) => {
    const agg = document.querySelector('[data-aggregated]');
    return agg !== null ? document.querySelectorAll('.zonebar').length > 0 && document.querySelectorAll('[data-link="live"]').length > 0 : document.querySelectorAll('[data-machine]').length === count;
  }, { timeout: 300_000 }, n);
  const firstRenderMs = Date.now() - started;

  const frames = await page.evaluate((seconds) => new Promise<{ intervals: number[]; longTasks: number[] }>((resolve) => {
    const intervals: number[] = [];
    const longTasks: number[] = [];
    new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: false });
    let last = performance.now();
    const end = last + seconds * 1000;
    const tick = (t: number) => {
      intervals.push(t - last);
      last = t;
      if (t < end) requestAnimationFrame(tick);
      else resolve({ intervals, longTasks });
    };
    requestAnimationFrame(tick);
  }), windowS);
  const dom = await page.evaluate(async () => {
    const list = document.querySelector('.mscroll')!;
    list.scrollTop = list.scrollHeight / 2;
    list.dispatchEvent(new Event('scroll'));
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    return { rows: document.querySelectorAll('.mrow[data-row]').length, tiles: document.querySelectorAll('[data-machine]').length, heapMb: (performance.memory?.usedJSHeapSize ?? 0) / 1e6 };
  });
  record('ui-fleet', `${n} machines: first full render ${firstRenderMs} ms; frames over ${windowS} s p50 ${percentile(frames.intervals, 50).toFixed(1)} ms, p99 ${percentile(frames.intervals, 99).toFixed(1)} ms, max ${Math.max(...frames.intervals).toFixed(0)} ms; long tasks ${frames.longTasks.length} (max ${Math.round(Math.max(0, ...frames.longTasks))} ms); list rows in the DOM ${dom.rows}, tiles ${dom.tiles}; JS heap ${dom.heapMb.toFixed(0)} MB`);
} finally {
  await browser.close();
  await fleet?.stop();
  await coord.stop();
  await rm(dir, { recursive: true, force: true });
}
