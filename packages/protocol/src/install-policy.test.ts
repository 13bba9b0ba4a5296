/**
 * The manifest rules and unit names both sides apply (install-policy.ts), with the
 * issue 10 manifests as examples. Property tests live with the users (coordinator
 * packages/manifest-policy.test.ts); this package has no test dependencies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_INSTALL_ALLOW_LIST, hostPathProblem, linkTargetProblem, manifestProblems, pathAllowed, withExtras } from './install-policy.ts';
import { canonicalJson, installStatement } from './install-statement.ts';
import { checkServiceRestartParams } from './packages.ts';

test('the issue 10 manifest breaks three rules, each with its field', () => {
  const problems = manifestProblems(
    { links: [{ path: '/etc/systemd/system/evil.service', target: '../../../../etc/passwd' }, { path: '/usr/bin/evil', target: 'evil' }], service: 'reboot.target' },
    DEFAULT_INSTALL_ALLOW_LIST,
  );
  assert.deepEqual(problems.map((p) => [p.path, p.code]), [
    ['links[0].path', 'NK_INSTALL_PATH_NOT_ALLOWED'],
    ['links[0].target', 'NK_INSTALL_TARGET_OUTSIDE'],
    ['links[1].path', 'NK_INSTALL_PATH_NOT_ALLOWED'],
    ['service', 'NK_INSTALL_SERVICE_NOT_ALLOWED'],
  ]);
});

test('targets: relative and inside; paths: normalised; allow-list entries exact or below a directory', () => {
  for (const t of ['kubelet', 'bin/containerd', '.', 'a/./b', 'a..b']) assert.equal(linkTargetProblem(t), null, t);
  for (const t of ['..', '../x', 'a/../../x', 'a/..', '/etc/passwd', '', 'a\\..\\b']) assert.notEqual(linkTargetProblem(t), null, t);
  for (const p of ['/', '/etc//x', '/etc/./x', '/etc/../x', '/etc/x/', 'etc/x']) assert.notEqual(hostPathProblem(p), null, p);
  const allow = withExtras(DEFAULT_INSTALL_ALLOW_LIST, { paths: ['/opt/tools/'] });
  assert.ok(pathAllowed('/opt/tools/bin/x', allow));
  assert.ok(!pathAllowed('/opt/tools', allow), 'the directory itself is not below itself');
  assert.ok(!pathAllowed('/opt/toolsx/y', allow));
  assert.ok(pathAllowed('/usr/bin/kubelet', allow));
  assert.ok(!pathAllowed('/usr/bin/kubelet2', allow));
});

test('service.restart names a *.service: targets that would reboot the node are refused', () => {
  for (const unit of ['reboot.target', 'poweroff.target', 'halt.target', 'kexec.target', 'ctrl-alt-del.target', '-kubelet.service', 'kubelet', 'systemd-reboot.service.d/x']) {
    assert.equal(checkServiceRestartParams({ unit }).ok, false, unit);
  }
  for (const unit of ['kubelet.service', 'containerd.service', 'getty@tty1.service']) assert.equal(checkServiceRestartParams({ unit }).ok, true, unit);
});

test('canonical JSON: sorted keys, no whitespace, absent fields left out; the statement covers the manifest', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x"y'], c: undefined }), '{"a":[true,null,"x\\"y"],"b":1}');
  assert.equal(canonicalJson({ n: 1e21, f: 1.5 }), '{"f":1.5,"n":1e+21}', 'RFC 8785 numbers');
  assert.throws(() => canonicalJson(undefined), TypeError);
  const m = { name: 'kubelet', format: 'tar.gz', links: [{ target: 'kubelet', path: '/usr/bin/kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 120000 };
  const s = installStatement({ package: 'kubelet', version: '1.31.2', artifact: { sha256: 'ab'.repeat(32), size: 10 }, manifest: m });
  assert.equal(
    s,
    `{"_type":"https://nodekeeper.io/InstallStatement/v1","artifact":{"sha256":"${'ab'.repeat(32)}","size":10},"manifest":{"format":"tar.gz","healthProbe":"kubelet","healthTimeoutMs":120000,"links":[{"path":"/usr/bin/kubelet","target":"kubelet"}],"name":"kubelet","service":"kubelet.service"},"package":"kubelet","version":"1.31.2"}`,
  );
  // Key order in the input does not matter; any value change does.
  assert.equal(installStatement({ manifest: { ...m }, artifact: { size: 10, sha256: 'ab'.repeat(32) }, version: '1.31.2', package: 'kubelet' }), s);
  assert.notEqual(installStatement({ package: 'kubelet', version: '1.31.2', artifact: { sha256: 'ab'.repeat(32), size: 10 }, manifest: { ...m, service: null } }), s);
});
