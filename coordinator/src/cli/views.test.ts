import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toMachineObject, toTokenObject } from '../api/objects.ts';
import { describeMachine } from './describe-machine.ts';
import { NOW, machineRecord, pendingRecord, revokedRecord, tokens } from '../api/test-support.ts';
import { ageSince, displayVersion, renderMachines, statusCell } from './machines-view.ts';
import { joinCommand, renderTokenCreated, tokenState } from './tokens-view.ts';

describe('machine views', () => {
  it('shortens long version strings but keeps packaging suffixes', () => {
    assert.equal(displayVersion({ version: 'Kubernetes v1.31.2', semver: '1.31.2' }), 'v1.31.2');
    assert.equal(displayVersion({ version: '1.6.20~ds1', semver: '1.6.20' }), '1.6.20~ds1');
    assert.equal(displayVersion({ version: 'version unknown' }), 'version unknown');
    assert.equal(displayVersion({ version: null }), '<unknown>');
    assert.equal(displayVersion(undefined), '<unknown>');
  });

  it('ages from RFC 3339 times, with <never> and <invalid>', () => {
    assert.equal(ageSince('2026-05-04T11:57:00.000Z', NOW), '3m');
    assert.equal(ageSince(null, NOW), '<never>');
    assert.equal(ageSince('yesterday', NOW), '<invalid>');
  });

  it('marks revoked machines in STATUS', () => {
    assert.equal(statusCell(toMachineObject(revokedRecord('n'), NOW)), 'Unknown,Revoked');
    assert.equal(statusCell(toMachineObject(machineRecord('n'), NOW)), 'Ready');
  });

  it('renders a machine that never reported without inventing values', () => {
    const out = renderMachines([toMachineObject(pendingRecord('node-3'), NOW)], NOW, true);
    assert.match(out, /^node-3 {2}Pending {2}<unknown> {2}<unknown> {3}<unknown> {2}30s {2}<never> {4}- {12}- {10}mid-node-3/m);
    const text = describeMachine(toMachineObject(pendingRecord('node-3'), NOW), [], NOW);
    assert.match(text, /^Conditions: {2}<none>$/m);
    assert.match(text, /^Components: {2}<none> \(no report from the agent yet\)$/m);
    assert.match(text, /^Last Seen: +<never>$/m);
  });

  it('describes a revoked machine as such', () => {
    const text = describeMachine(toMachineObject(revokedRecord('node-4'), NOW), [], NOW);
    assert.match(text, /^Revoked: +2026-05-04T11:00:00\.000Z \(60m ago\): the agent's credential is refused$/m);
  });
});

describe('token views', () => {
  it('states: Revoked beats Expired beats Exhausted', () => {
    const [active] = tokens.map(toTokenObject);
    assert.ok(active);
    assert.equal(tokenState(active, NOW), 'Active');
    assert.equal(tokenState({ ...active, used: 10 }, NOW), 'Exhausted');
    assert.equal(tokenState({ ...active, used: 10, expiresAt: '2026-01-01T00:00:00Z' }, NOW), 'Expired');
    assert.equal(tokenState({ ...active, revoked: true, expiresAt: '2026-01-01T00:00:00Z' }, NOW), 'Revoked');
  });

  it('the join command pins the CA only when there is one, and warns otherwise', () => {
    const created = { token: 'abc.def', id: 'abc', expiresAt: '2026-05-04T13:00:00.000Z', uses: 1, caCertHash: null };
    assert.equal(joinCommand('http://h:1', created), 'nodekeeper-agent --server http://h:1 --token abc.def');
    const text = renderTokenCreated('http://h:1', created, NOW);
    assert.match(text, /^Expires: {2}2026-05-04T13:00:00\.000Z \(in 60m\)$/m);
    assert.match(text, /^warning: the coordinator serves plain http/m);
    assert.equal(joinCommand('https://h:1', { ...created, caCertHash: 'sha256:ff' }), 'nodekeeper-agent --server https://h:1 --token abc.def --discovery-ca-hash sha256:ff');
  });
});
