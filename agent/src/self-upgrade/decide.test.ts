import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideOnStart } from './decide.ts';
import { formatPending, parsePending, type PendingUpgrade } from './record.ts';

const p: PendingUpgrade = { commandId: 'ro-abc', from: '1.0.0', to: '2.0.0', deadline: 1_800_000_000, maxBoots: 3 };

describe('self-upgrade start decision', () => {
  it('nothing pending: nothing to do', () => {
    assert.deepEqual(decideOnStart({ pending: null, running: '1.0.0', current: '1.0.0', reverted: null }), { kind: 'none' });
  });
  it('the new version started through current: confirm', () => {
    assert.equal(decideOnStart({ pending: p, running: '2.0.0', current: '2.0.0', reverted: null }).kind, 'confirm');
  });
  it('the guard switched back: the old agent fails the command NK_AGENT_UPGRADE_REVERTED, with the reason', () => {
    const d = decideOnStart({ pending: p, running: '1.0.0', current: '1.0.0', reverted: 'crash loop: 3 starts' });
    assert.equal(d.kind, 'failed');
    assert.ok(d.kind === 'failed' && d.code === 'NK_AGENT_UPGRADE_REVERTED' && !d.switchBack && d.message.includes('crash loop'));
  });
  it('killed after the record, before the switch: the old agent fails the command as interrupted, nothing to switch', () => {
    const d = decideOnStart({ pending: p, running: '1.0.0', current: '1.0.0', reverted: null });
    assert.ok(d.kind === 'failed' && d.code === 'NK_INSTALL_INTERRUPTED' && !d.switchBack);
  });
  it('switched, but another version started: switch back', () => {
    const d = decideOnStart({ pending: p, running: '1.0.0', current: '2.0.0', reverted: null });
    assert.ok(d.kind === 'failed' && d.switchBack && d.code === 'NK_AGENT_UPGRADE_REVERTED');
  });
  it('a record that is not whole is dropped', () => {
    assert.deepEqual(decideOnStart({ pending: 'corrupt', running: '1.0.0', current: '1.0.0', reverted: null }), { kind: 'corrupt' });
  });
});

describe('pending-upgrade record', () => {
  it('round-trips, in key=value lines the guard reads', () => {
    const text = formatPending(p);
    assert.equal(text, 'command=ro-abc\nfrom=1.0.0\nto=2.0.0\ndeadline=1800000000\nmaxBoots=3\n');
    assert.deepEqual(parsePending(text), p);
  });
  it('a torn or hostile record is not a record', () => {
    const text = formatPending(p);
    assert.equal(parsePending(text.slice(0, 30)), null);
    assert.equal(parsePending(text.replace('to=2.0.0', 'to=../../etc')), null);
    assert.equal(parsePending(text.replace('deadline=1800000000', 'deadline=$(reboot)')), null);
    assert.throws(() => formatPending({ ...p, to: '2.0.0\nfrom=0.0.1' }), TypeError);
  });
});
