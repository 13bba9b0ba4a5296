import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RemediationFleetStatus, RemediationRule as RemediationRuleObject } from '@nodekeeper/api';
import { toMachineObject } from '../api/objects.ts';
import { describeMachine } from './describe-machine.ts';
import { NOW, machineRecord } from '../api/test-support.ts';
import { faultsCell, remediationCell } from './machines-view.ts';
import { fleetHeader, ladderText, renderRules, stepCell } from './remediation-views.ts';

const calm: RemediationFleetStatus = { paused: false, dryRun: false, storm: { active: false, reason: '', message: '', since: null }, inFlight: 0, maxConcurrent: 5 };

const rule = (spec: Partial<RemediationRuleObject['spec']>): RemediationRuleObject => ({
  apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'r' },
  spec: { fault: 'KubeletNotRunning', ladder: [{ action: 'RestartService', target: 'kubelet.service' }, { action: 'CordonAndNotify' }], ...spec },
});

describe('remediation views', () => {
  it('the header is empty while remediation runs normally, one line per thing holding it back', () => {
    assert.equal(fleetHeader(calm, NOW), '');
    const all = fleetHeader({ ...calm, paused: true, dryRun: true, storm: { active: true, reason: 'PartitionSuspected', message: '6 of 10 agents silent', since: new Date(NOW - 90_000).toISOString() } }, NOW, 'kubectl nodekeeper');
    assert.deepEqual(all.trimEnd().split('\n'), [
      'Remediation is PAUSED cluster-wide: no new step starts (resume with: kubectl nodekeeper remediation resume)',
      'Dry run is ON: rules record what they would do, nothing is executed (turn off with: kubectl nodekeeper remediation dry-run off)',
      'Storm guard ACTIVE for 90s: PartitionSuspected: 6 of 10 agents silent; no new remediation starts until it ends',
    ]);
  });

  it('STEP is 1-based and bounded by the ladder when the rule is known', () => {
    const rules = [rule({})];
    assert.equal(stepCell({ step: 1, rule: 'r' }, rules), '2/2');
    assert.equal(stepCell({ step: 1, rule: 'gone' }, rules), '2');
    assert.equal(stepCell({ step: null, rule: null }, rules), '-');
  });

  it('rules show the coordinator defaults for unset fields, and targets in the ladder', () => {
    const out = renderRules([{ ...rule({ cooldownSeconds: 0, dryRun: true }), status: { source: 'applied' } }]);
    assert.match(out, /^r +KubeletNotRunning +60s +RestartService\(kubelet\.service\) > CordonAndNotify +3\/24h +0s +applied +true$/m);
    assert.equal(ladderText(rule({}), 1), 'RestartService(kubelet.service) > [CordonAndNotify]');
  });

  it('machine cells and the describe section read the remediation fields, and tolerate their absence', () => {
    const plain = toMachineObject(machineRecord('node-9'), NOW);
    assert.equal(remediationCell(plain), '-');
    assert.doesNotMatch(describeMachine(plain, [], NOW), /^Remediation:/m);
    // As the coordinator lists machines: with status.remediation and their non-Clear faults.
    const quiet = { ...plain, status: { ...plain.status, remediation: { phase: 'Idle', reason: '', rule: null, step: null, cordoned: false }, faults: [] } };
    const node5 = toMachineObject(machineRecord('node-5'), NOW);
    const faults = [{ type: 'FrequentKubeletRestart', status: 'Active', reason: 'RestartLoop', message: '7 restarts in 600s', since: new Date(NOW - 30 * 60_000).toISOString() }];
    const human = { ...node5, status: { ...node5.status, remediation: { phase: 'NeedsHuman', reason: 'LadderExhausted', rule: 'kubelet-crash-loop', step: 1, cordoned: true }, faults } };
    assert.equal(remediationCell(quiet), 'Idle');
    assert.doesNotMatch(describeMachine(quiet, [], NOW), /^Remediation:/m, 'Idle without faults: no section');
    assert.equal(remediationCell(human), 'NeedsHuman,Cordoned');
    assert.match(describeMachine(human, [], NOW), /^Remediation:\n {2}Phase: +NeedsHuman\n/m);
    assert.equal(faultsCell([{ type: 'A', status: 'Clear', reason: '', message: '', since: null }, { type: 'B', status: 'Clearing', reason: '', message: '', since: null }]), 'B(Clearing)');
  });
});
