import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeBoot, OLD_BOOT_GRACE_MS, type BootFacts } from './verify.ts';

const sent = { bootBefore: 'aaaaaaaa-1111', kernelBefore: '6.1.0-25-amd64', expectedKernel: '6.1.0-26-amd64', rebootAt: 1_000, reconnectedAt: null, timeoutMs: 600_000 };
const facts = (o: Partial<BootFacts> = {}): BootFacts => ({ connected: true, bootId: 'bbbbbbbb-2222', kernel: '6.1.0-26-amd64', nodeReady: 'True', ...o });

test('back: a new boot id, the expected kernel, the Node Ready', () => {
  const v = judgeBoot(sent, facts(), 5_000);
  assert.equal(v.kind, 'back');
  assert.match(v.message, /boot aaaaaaaa -> bbbbbbbb, kernel 6.1.0-26-amd64\), Node Ready/);
});

test('a new boot waits for the Node to be Ready, and fails when it is not Ready in time', () => {
  assert.equal(judgeBoot(sent, facts({ nodeReady: 'False' }), 5_000).kind, 'wait');
  const v = judgeBoot(sent, facts({ nodeReady: 'Unknown' }), 1_000 + 600_000);
  assert.equal(v.kind, 'failed');
  assert.match(v.message, /Node was not Ready within 600 s/);
});

test('without a member cluster (nodeReady null) the Node is not checked', () => {
  assert.equal(judgeBoot(sent, facts({ nodeReady: null }), 5_000).kind, 'back');
});

test('the old kernel on a new boot fails at once (omni#1552)', () => {
  const v = judgeBoot(sent, facts({ kernel: '6.1.0-25-amd64' }), 5_000);
  assert.equal(v.kind, 'failed');
  assert.match(v.message, /kernel 6.1.0-25-amd64, not 6.1.0-26-amd64/);
});

test('an unknown expected kernel is not checked', () => {
  assert.equal(judgeBoot({ ...sent, expectedKernel: null }, facts({ kernel: 'anything' }), 5_000).kind, 'back');
});

test('the old boot id after a reconnect fails once the grace is over; before a reconnect it waits', () => {
  const old = facts({ bootId: sent.bootBefore });
  assert.equal(judgeBoot(sent, old, 5_000).kind, 'wait', 'not reconnected yet: the reboot may not have begun');
  const reconnected = { ...sent, reconnectedAt: 10_000 };
  assert.equal(judgeBoot(reconnected, old, 10_000 + OLD_BOOT_GRACE_MS - 1).kind, 'wait');
  const v = judgeBoot(reconnected, old, 10_000 + OLD_BOOT_GRACE_MS);
  assert.equal(v.kind, 'failed');
  assert.match(v.message, /reconnected on the old boot id aaaaaaaa.*did not reboot/);
});

test('not back within the timeout fails, saying what was seen', () => {
  const v = judgeBoot(sent, facts({ connected: false }), 1_000 + 600_000);
  assert.equal(v.kind, 'failed');
  assert.match(v.message, /did not come back on a new boot within 600 s \(not connected\)/);
  assert.equal(judgeBoot(sent, facts({ connected: false }), 1_000 + 599_999).kind, 'wait');
});
