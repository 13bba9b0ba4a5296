import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@nodekeeper/common';
import { DEFAULT_RULE_OBJECTS, checkRuleSet, defaultRules, parseRule, validateRule } from './rules.ts';

const base = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'r' } };

test('the default rules validate; none reboots; each ends in CordonAndNotify', () => {
  const rules = defaultRules();
  assert.equal(rules.length, DEFAULT_RULE_OBJECTS.length);
  for (const r of rules) {
    assert.ok(!r.ladder.some((s) => s.action === 'Reboot'), r.name);
    assert.equal(r.ladder.at(-1)?.action, 'CordonAndNotify');
  }
  const net = rules.find((r) => r.fault === 'NetworkNotReady');
  assert.deepEqual(net?.ladder.map((s) => `${s.action}:${s.target}`), ['RestoreConfig:cni-plugins', 'ReinstallPackage:cni-plugins', 'CordonAndNotify:null']);
});

test('errors carry paths', () => {
  const r = validateRule({ ...base, spec: { fault: 'Nope', ladder: [] } });
  assert.ok(!r.ok && r.errors.some((e) => e.path.startsWith('/spec/fault')));
  const t = validateRule({ ...base, spec: { fault: 'DiskPressure', ladder: [{ action: 'RestartService' }, { action: 'CordonAndNotify' }] } });
  assert.ok(!t.ok && t.errors.some((e) => e.path === '/spec/ladder/0/target'));
  const c = validateRule({ ...base, spec: { fault: 'KubeletUnhealthy', ladder: [{ action: 'CordonAndNotify' }, { action: 'RestartService' }] } });
  assert.ok(!c.ok && c.errors.some((e) => e.path === '/spec/ladder/0/action'));
  const s = validateRule({ ...base, spec: { fault: 'AgentSilent', ladder: [{ action: 'Reboot' }] } });
  assert.ok(!s.ok && s.errors.some((e) => e.path === '/spec/ladder/0/action'));
});

test('parseRule and checkRuleSet throw NK_REMEDIATION_RULE_INVALID', () => {
  assert.throws(() => parseRule({ ...base, spec: {} }), (e) => hasCode(e, 'NK_REMEDIATION_RULE_INVALID'));
  const a = parseRule({ ...base, spec: { fault: 'KubeletUnhealthy', ladder: [{ action: 'RestartService' }] } });
  assert.equal(a.ladder[0]?.target, 'kubelet.service');
  assert.throws(() => checkRuleSet([a, { ...a, name: 'b' }]), (e) => hasCode(e, 'NK_REMEDIATION_RULE_INVALID'));
});

test('RestartService restarts services only: reboot.target and poweroff.target are refused with their path', () => {
  for (const target of ['reboot.target', 'poweroff.target', 'halt.target', 'kexec.target', 'sleep.target', 'kubelet']) {
    const r = validateRule({ ...base, spec: { fault: 'KubeletNotRunning', ladder: [{ action: 'RestartService', target }, { action: 'CordonAndNotify' }] } });
    assert.ok(!r.ok && r.errors.some((e) => e.path === '/spec/ladder/0/target' && /\*\.service/.test(e.message)), `${target}: ${JSON.stringify(r)}`);
  }
  const ok = validateRule({ ...base, spec: { fault: 'KubeletNotRunning', ladder: [{ action: 'RestartService', target: 'crio.service' }, { action: 'CordonAndNotify' }] } });
  assert.ok(ok.ok);
});

test('a rule drains with kubectl drain defaults unless it says otherwise; bad drain options carry their path', () => {
  const plain = parseRule({ ...base, spec: { fault: 'KubeletUnhealthy', ladder: [{ action: 'ReinstallPackage' }] } });
  assert.deepEqual(plain.drain, { force: false, deleteEmptyDirData: false });
  const set = parseRule({ ...base, spec: { fault: 'KubeletUnhealthy', ladder: [{ action: 'ReinstallPackage' }], drain: { force: true, timeoutSeconds: 120, gracePeriodSeconds: 5 } } });
  assert.deepEqual(set.drain, { force: true, deleteEmptyDirData: false, timeoutSeconds: 120, gracePeriodSeconds: 5 });
  const bad = validateRule({ ...base, spec: { fault: 'KubeletUnhealthy', ladder: [{ action: 'ReinstallPackage' }], drain: { timeoutSeconds: 0, surprise: true } } });
  assert.ok(!bad.ok && bad.errors.some((e) => e.path.startsWith('/spec/drain')), JSON.stringify(bad));
});
