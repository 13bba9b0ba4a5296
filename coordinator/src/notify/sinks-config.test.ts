/**
 * The sinks' options through the coordinator's real config loader (flags, env, YAML
 * file), every bad value refused with a specific error, and the notification bodies.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@nodekeeper/common';
import { loadConfig, usage } from '../config.ts';
import { notificationBody, notifies } from './notify-format.ts';
import { parseHeaderLine } from './sinks-config.ts';
import { retryAfter, webhookSinkName } from './webhook.ts';

const dir = mkdtempSync(join(tmpdir(), 'nk-sinks-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const refused = (argv: string[], code: string, message: RegExp, env: Record<string, string> = {}) =>
  assert.throws(() => loadConfig(argv, env), (err: unknown) => {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });

test('defaults: Kubernetes Events on, no webhook', () => {
  const { config } = loadConfig([], {});
  assert.equal(config.sinks.kubeEvents.enabled, true);
  assert.equal(config.sinks.kubeEvents.limits.nodeBurst, 25);
  assert.deepEqual(config.sinks.notify.urls, []);
  assert.equal(config.sinks.notify.format, 'slack');
});

test('--help lists the sinks\' flags', () => {
  assert.match(usage, /\n  --notify-url URL {14}a webhook/);
  assert.match(usage, /--kube-events-node-burst N/);
  assert.ok(!usage.includes('${'), 'no template left unexpanded');
});

test('flags, env and the config file set them; URLs repeat', () => {
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'notifyUrl:\n  - https://hooks.example.com/a\n  - https://hooks.example.com/b\nnotifyFormat: json\nkubeEvents: false\n');
  const { config } = loadConfig(['--config', file, '--notify-rate', '7', '--kube-events-node-burst', '3'], { NODEKEEPER_COORDINATOR_NOTIFY_RETRIES: '0' });
  assert.deepEqual(config.sinks.notify.urls, ['https://hooks.example.com/a', 'https://hooks.example.com/b']);
  assert.equal(config.sinks.notify.format, 'json');
  assert.equal(config.sinks.notify.ratePerMinute, 7);
  assert.equal(config.sinks.notify.retries, 0);
  assert.equal(config.sinks.kubeEvents.enabled, false);
  assert.equal(config.sinks.kubeEvents.limits.nodeBurst, 3);
  const two = loadConfig(['--notify-url', 'http://127.0.0.1:9/x', '--notify-url', 'https://h/y', '--notify-allow-http'], {}).config;
  assert.equal(two.sinks.notify.urls.length, 2);
});

test('bad values are refused, naming the option and never echoing a secret path', () => {
  refused(['--notify-url', 'http://hooks.example.com/T0/B0/secret'], 'NK_CONFIG_INVALID', /--notify-url http:\/\/hooks\.example\.com: http sends notifications in clear text/);
  assert.throws(() => loadConfig(['--notify-url', 'http://hooks.example.com/T0/B0/secret'], {}), (err: Error) => !err.message.includes('secret'));
  refused(['--notify-url', 'ftp://x/y'], 'NK_CONFIG_INVALID', /only https/);
  refused(['--notify-url', 'not a url/secret'], 'NK_CONFIG_INVALID', /^--notify-url: a value is not a URL$/);
  refused(['--notify-url', 'https://a/x', '--notify-url', 'https://a/x'], 'NK_CONFIG_INVALID', /same URL twice/);
  refused(['--notify-format', 'xml'], 'NK_CONFIG_INVALID', /--notify-format must be slack or json/);
  refused(['--notify-rate', '0'], 'NK_CONFIG_INVALID', /--notify-rate must be an integer from 1/);
  refused(['--notify-timeout', '5'], 'NK_CONFIG_INVALID', /--notify-timeout/);
  refused(['--kube-events', 'maybe'], 'NK_CONFIG_INVALID', /--kube-events must be true or false/);
  refused(['--kube-events-burst', '-1'], 'NK_CONFIG_INVALID', /--kube-events-burst/);
  refused(['--notify-cluster-name', 'a b'], 'NK_CONFIG_INVALID', /--notify-cluster-name/);
});

test('the header file holds one "Name: value" line; anything else is NK_NOTIFY_HEADER_INVALID without the value', () => {
  assert.deepEqual(parseHeaderLine('Authorization: Bearer abc\n', 'f'), { name: 'Authorization', value: 'Bearer abc' });
  assert.deepEqual(parseHeaderLine('X-Token:xyz', 'f'), { name: 'X-Token', value: 'xyz' });
  for (const bad of ['', 'Bearer abc', 'A: 1\nB: 2', 'Bad Name: v', 'Empty:   ']) {
    assert.throws(() => parseHeaderLine(bad, '/etc/nk/header'), (err: unknown) => err instanceof AppError && err.code === 'NK_NOTIFY_HEADER_INVALID' && !/abc|1|2/.test(err.message.replace('/etc/nk/header', '')));
  }
});

test('what notifies: NeedsHuman, rollout stops, reboot start and end', () => {
  assert.ok(notifies({ object: 'machine/n1', reason: 'NeedsHuman' }));
  assert.ok(notifies({ object: 'rollout/r', reason: 'CanaryFailed' }));
  assert.ok(notifies({ object: 'rollout/r', reason: 'Aborted' }));
  assert.ok(notifies({ object: 'machine/n1', reason: 'RebootSucceeded' }));
  assert.ok(!notifies({ object: 'rollout/r', reason: 'Created' }));
  assert.ok(!notifies({ object: 'machine/n1', reason: 'Paused' }), 'Paused is a rollout stop only on a rollout');
  assert.ok(!notifies({ object: 'machine/n1', reason: 'StepStarted' }));
});

test('bodies: plain JSON is the record and the cluster; Slack text is escaped and says what was left out', () => {
  const e = { id: 9, at: Date.UTC(2026, 11, 3), object: 'machine/n1', type: 'Warning' as const, reason: 'NeedsHuman', message: 'a <b> & c' };
  assert.deepEqual(notificationBody('json', e, { cluster: 'c1', suppressed: 0 }), {
    cluster: 'c1', event: { id: 9, time: '2026-12-03T00:00:00.000Z', object: 'machine/n1', type: 'Warning', reason: 'NeedsHuman', message: 'a <b> & c' },
  });
  assert.equal(notificationBody('json', e, { cluster: 'c1', suppressed: 2 })['suppressed'], 2);
  const slack = notificationBody('slack', e, { cluster: 'c1', suppressed: 3 });
  assert.match(String(slack['text']), /^:warning: \[c1\] machine\/n1 NeedsHuman: a &lt;b&gt; &amp; c \(3 earlier notification\(s\) left out by the rate limit\)$/);
  assert.ok(Array.isArray(slack['blocks']));
});

test('Retry-After in seconds or as a date; cursor names hide the URL', () => {
  assert.equal(retryAfter('3'), 3000);
  assert.equal(retryAfter(new Date(Date.UTC(2026, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2026, 0, 1)), 10_000);
  assert.equal(retryAfter('soon'), null);
  assert.equal(retryAfter(null), null);
  const name = webhookSinkName('https://hooks.slack.com/services/T0/B0/secret');
  assert.match(name, /^notify:[0-9a-f]{16}$/);
  assert.equal(name, webhookSinkName('https://hooks.slack.com/services/T0/B0/secret'));
});
