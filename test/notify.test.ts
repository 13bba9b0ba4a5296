/**
 * Notification webhooks with a real coordinator and a real local HTTP server on port 0:
 * what is sent (plain JSON and Slack-compatible), retries on 5xx and 429, giving up
 * (logged and counted), no retry on other 4xx, a server that never answers or answers
 * without end, the rate limit, and restarts (kill -9 included) that send nothing twice.
 * Events are appended to the coordinator's store by the test, as its controllers would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { recordEvents, type LoggedEvent } from './harness/event-log.ts';
import { startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
  readonly at: number;
}

type Responder = (res: http.ServerResponse) => void;

const SECRET = 'Bearer s3cr3t-notify-token';
const HOOK_SECRET_PATH = '/hooks/T000/B000/XXXXsecretpath';

describe('notification webhooks', { timeout: 240_000 }, () => {
  let dir: string;
  let server: http.Server;
  let base: string;
  let coord: CoordinatorProc;
  let args: string[];
  const received: Received[] = [];
  /** Answers for the next requests, in order; then 200. */
  const script: Responder[] = [];
  const hanging = new Set<http.ServerResponse>();

  const record = (events: LoggedEvent[]) => recordEvents(coord.dataDir, events);
  const forEvent = (id: number) => received.filter((r) => r.body?.event?.id === id);
  const metric = async (c: CoordinatorProc, result: string) => {
    const text = await (await fetch(new URL('/metrics', c.url))).text();
    const m = new RegExp(`^nodekeeper_notifications_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  const needsHuman = (machine: string, message = 'rule kubelet-sick: still failing after RestartService'): LoggedEvent =>
    ({ object: `machine/${machine}`, type: 'Warning', reason: 'NeedsHuman', message });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-notify-'));
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        received.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() });
        const next = script.shift();
        if (next !== undefined) next(res);
        else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const headerFile = path.join(dir, 'notify-header');
    await writeFile(headerFile, `Authorization: ${SECRET}\n`, { mode: 0o600 });
    args = [
      '--insecure', '--notify-url', `${base}${HOOK_SECRET_PATH}`, '--notify-allow-http', '--notify-format', 'json',
      '--notify-header-file', headerFile, '--notify-retries', '2', '--notify-timeout', '1500', '--notify-rate', '600',
      '--notify-cluster-name', 'prod-eu-1',
    ];
    coord = await startCoordinator(path.join(dir, 'coordinator'), args);
  });

  after(async () => {
    for (const r of hanging) r.destroy();
    await coord?.stop();
    server?.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('NeedsHuman, rollout stops and reboots are posted as plain JSON with the auth header; other events are not', async () => {
    const ids = record([
      { object: 'machine/node-1', reason: 'AgentConnected', message: 'connected' },
      needsHuman('node-1'),
      { object: 'rollout/kubelet-1-32', reason: 'Created', message: 'kubelet=1.32.1 on 3 machine(s)' },
      { object: 'rollout/kubelet-1-32', type: 'Warning', reason: 'CanaryFailed', message: 'canary node-2 failed; paused' },
      { object: 'machine/node-3', reason: 'RebootStarted', message: 'systemctl reboot sent' },
      { object: 'machine/node-3', reason: 'StepStarted', message: 'rule r step 1: RestartService' },
    ]);
    await waitFor('three notifications', () => received.length >= 3, 20_000, 100);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(received.map((r) => r.body.event.reason), ['NeedsHuman', 'CanaryFailed', 'RebootStarted']);
    const first = received[0]!;
    assert.equal(first.path, HOOK_SECRET_PATH);
    assert.equal(first.headers['authorization'], SECRET);
    assert.match(String(first.headers['content-type']), /^application\/json/);
    assert.deepEqual(first.body, {
      cluster: 'prod-eu-1',
      event: { id: ids[1], time: first.body.event.time, object: 'machine/node-1', type: 'Warning', reason: 'NeedsHuman', message: 'rule kubelet-sick: still failing after RestartService' },
    });
    assert.ok(!Number.isNaN(Date.parse(first.body.event.time)));
    assert.equal(await metric(coord, 'sent'), 3);
    const log = coord.log();
    assert.ok(!log.includes('s3cr3t'), 'the auth header is never logged');
    assert.ok(!log.includes('XXXXsecretpath'), "the URL's path (a Slack-style secret) is never logged");
  });

  test('a 500 is retried with backoff until it is delivered; a 429 waits for its Retry-After', async () => {
    received.length = 0;
    const fail = (res: http.ServerResponse) => res.writeHead(500).end('boom');
    script.push(fail, fail);
    const [id] = record([needsHuman('node-2')]);
    await waitFor('delivered on the third attempt', () => forEvent(id!).length === 3, 20_000, 100);
    assert.ok(received[1]!.at - received[0]!.at >= 400, 'not retried at once');
    script.push((res) => res.writeHead(429, { 'retry-after': '2' }).end());
    const [id2] = record([needsHuman('node-2', 'again')]);
    await waitFor('delivered after the 429', () => forEvent(id2!).length === 2, 20_000, 100);
    const [a, b] = forEvent(id2!);
    assert.ok(b!.at - a!.at >= 1900, `Retry-After honoured (${b!.at - a!.at} ms)`);
  });

  test('always 500: given up after the retries, logged and counted, and the next one still goes out', async () => {
    received.length = 0;
    const failedBefore = await metric(coord, 'failed');
    const fail = (res: http.ServerResponse) => res.writeHead(503).end();
    script.push(fail, fail, fail);
    const [id, next] = record([needsHuman('node-3', 'doomed'), needsHuman('node-4', 'after it')]);
    await waitFor('the next one delivered', () => forEvent(next!).length === 1, 30_000, 100);
    assert.equal(forEvent(id!).length, 3, '1 attempt + --notify-retries 2');
    assert.equal(await metric(coord, 'failed') - failedBefore, 1);
    assert.match(coord.log(), /notification given up/);
    assert.match(coord.log(), /HTTP 503/);
  });

  test('a 4xx other than 429 is not retried', async () => {
    received.length = 0;
    script.push((res) => res.writeHead(404).end('no such hook'));
    const [id, next] = record([needsHuman('node-5', 'to a missing hook'), needsHuman('node-6', 'then this')]);
    await waitFor('the next one delivered', () => forEvent(next!).length === 1, 20_000, 100);
    assert.equal(forEvent(id!).length, 1);
  });

  test('a server that never answers is cut at --notify-timeout, and an endless answer is not read', async () => {
    received.length = 0;
    script.push((res) => hanging.add(res)); // headers never come
    script.push((res) => {
      // 200 and then a body without end: delivered, and the body is left unread.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
      hanging.add(res);
    });
    const [id, next] = record([needsHuman('node-7', 'slow hook'), needsHuman('node-8', 'after the endless one')]);
    await waitFor('the one after delivered', () => forEvent(next!).length === 1, 30_000, 100);
    const tries = forEvent(id!);
    assert.equal(tries.length, 2, 'the hanging attempt was abandoned and retried once; the endless 200 counted as delivered');
    assert.ok(tries[1]!.at - tries[0]!.at >= 1400, 'the first attempt waited for the timeout');
  });

  test('restarts, a kill -9 included, send nothing that was delivered', async () => {
    received.length = 0;
    const [id] = record([needsHuman('node-9', 'before the restart')]);
    await waitFor('delivered', () => forEvent(id!).length === 1, 20_000, 100);
    await coord.stop('SIGTERM');
    coord = await startCoordinator(coord.dataDir, args);
    await coord.stop('SIGKILL');
    coord = await startCoordinator(coord.dataDir, args);
    const [after] = record([needsHuman('node-10', 'after the restarts')]);
    await waitFor('the new one delivered', () => forEvent(after!).length === 1, 20_000, 100);
    assert.deepEqual(received.map((r) => r.body.event.id), [id, after], 'nothing sent twice');
  });

  test('a header file that is not one "Name: value" line stops the coordinator at start, without printing it', async () => {
    const bad = path.join(dir, 'bad-header');
    await writeFile(bad, 'Bearer s3cr3t-without-a-name\n', { mode: 0o600 });
    await assert.rejects(startCoordinator(path.join(dir, 'bad'), ['--insecure', '--notify-url', `${base}/x`, '--notify-allow-http', '--notify-header-file', bad]), (err: Error) => {
      assert.match(err.message, /NK_NOTIFY_HEADER_INVALID/);
      assert.match(err.message, /exactly one "Name: value" header line/);
      assert.ok(!err.message.includes('s3cr3t'));
      return true;
    });
  });

  test('Slack format, and the rate limit leaves out what is over it and says so', async () => {
    const slack = await startCoordinator(path.join(dir, 'slack'), ['--insecure', '--notify-url', `${base}/slack`, '--notify-allow-http', '--notify-rate', '3']);
    try {
      received.length = 0;
      recordEvents(slack.dataDir, Array.from({ length: 6 }, (_, i) => needsHuman(`node-${i}`, `<b>broken</b> & ${i}`)));
      await waitFor('three sent, three left out', async () => received.length === 3 && (await metric(slack, 'dropped')) === 3, 20_000, 100);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(received.length, 3, 'no more than --notify-rate 3 per minute');
      const body = received[0]!.body;
      assert.equal(received[0]!.path, '/slack');
      assert.match(body.text, /NeedsHuman: &lt;b&gt;broken&lt;\/b&gt; &amp; 0/);
      assert.match(body.text, /machine\/node-0/);
      assert.equal(body.blocks[0].type, 'section');
      assert.match(body.blocks[0].text.text, /\*NeedsHuman\*/);
      assert.match(slack.log(), /left out by the rate limit/);
    } finally {
      await slack.stop();
    }
  });
});
