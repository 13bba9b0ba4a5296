/**
 * The manifest rules at apply (manifest-policy.ts over packages/protocol install-policy.ts):
 * properties over generated manifests, and the built-in manifests against the default
 * allow-list the agent ships (the agent cannot import this package, so the list is data
 * in packages/protocol, and this test keeps the two in step).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError, hasCode } from '@nodekeeper/common';
import { DEFAULT_INSTALL_ALLOW_LIST, type PackageManifest } from '@nodekeeper/protocol';
import { parseClusterPackageVersion } from './cluster-package-version.ts';
import { builtinManifests } from './manifests.ts';
import { checkManifestAtApply, coordinatorAllowList } from './manifest-policy.ts';

const base: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 60_000 };
const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
const allow = coordinatorAllowList();

test('the built-in manifests are within the default allow-list, and the list holds nothing else', () => {
  const paths = new Set<string>();
  const services = new Set<string>();
  for (const [name, m] of Object.entries(builtinManifests)) {
    assert.doesNotThrow(() => checkManifestAtApply(m, DEFAULT_INSTALL_ALLOW_LIST, name));
    for (const l of m.links) paths.add(l.path);
    if (m.service !== null) services.add(m.service);
    assert.deepEqual([...(DEFAULT_INSTALL_ALLOW_LIST.adoptable[name] ?? [])].sort(), m.links.map((l) => l.path).sort(), `${name} adopts its own link paths`);
  }
  assert.deepEqual([...DEFAULT_INSTALL_ALLOW_LIST.paths].sort(), [...paths].sort());
  assert.deepEqual([...DEFAULT_INSTALL_ALLOW_LIST.services].sort(), [...services].sort());
});

test('property: any target with a ".." segment, or absolute, is refused with its path', () => {
  const climbing = fc.tuple(fc.array(segment, { maxLength: 3 }), fc.array(segment, { maxLength: 3 })).map(([a, b]) => [...a, '..', ...b].join('/'));
  const absolute = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);
  fc.assert(
    fc.property(fc.oneof(climbing, absolute), fc.nat({ max: 2 }), (target, i) => {
      const links = [...base.links, { path: '/usr/bin/containerd', target: 'x' }, { path: '/opt/cni/bin', target: '.' }];
      links[i] = { ...links[i]!, target };
      try {
        checkManifestAtApply({ ...base, links }, allow, 'spec.manifest');
        return false;
      } catch (e) {
        return hasCode(e, 'NK_INSTALL_TARGET_OUTSIDE') && (e as AppError).context['path'] === `spec.manifest.links[${i}].target`;
      }
    }),
    { numRuns: 300 },
  );
});

test('property: any link path outside the allow-list is refused; any path inside it passes', () => {
  const hostPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `/${s.join('/')}`);
  fc.assert(
    fc.property(hostPath, (p) => {
      const m = { ...base, links: [{ path: p, target: 'kubelet' }] };
      const allowed = DEFAULT_INSTALL_ALLOW_LIST.paths.includes(p);
      try {
        checkManifestAtApply(m, allow, 'm');
        return allowed;
      } catch (e) {
        return !allowed && hasCode(e, 'NK_INSTALL_PATH_NOT_ALLOWED');
      }
    }),
    { numRuns: 300 },
  );
  const widened = coordinatorAllowList({ paths: ['/opt/tools/'] });
  fc.assert(fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), (s) => {
    checkManifestAtApply({ ...base, links: [{ path: `/opt/tools/${s.join('/')}`, target: 'kubelet' }] }, widened, 'm');
  }), { numRuns: 100 });
});

test('property: a service that is not an allowed *.service is refused', () => {
  fc.assert(
    fc.property(fc.oneof(segment.map((s) => `${s}.target`), segment, segment.map((s) => `${s}.service`)), (unit) => {
      try {
        checkManifestAtApply({ ...base, service: unit }, allow, 'm');
        return DEFAULT_INSTALL_ALLOW_LIST.services.includes(unit);
      } catch (e) {
        return hasCode(e, 'NK_INSTALL_SERVICE_NOT_ALLOWED') && (e as AppError).context['path'] === 'm.service';
      }
    }),
    { numRuns: 300 },
  );
});

test('parseClusterPackageVersion refuses a bad manifest with its code and JSON path', () => {
  const obj = (manifest: unknown) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', spec: { packages: [{ name: 'kubelet', version: '1.31.2', artifact: { url: 'https://a/x', sha256: 'a'.repeat(64), size: 1 } }, { name: 'evil', version: '1.0.0', artifact: { url: 'https://a/x', sha256: 'a'.repeat(64), size: 1 }, manifest }] } });
  const evil = { ...base, name: 'evil', links: [{ path: '/usr/bin/evil', target: 'evil' }] };
  assert.throws(() => parseClusterPackageVersion(obj(evil)), (e) => hasCode(e, 'NK_INSTALL_PATH_NOT_ALLOWED') && (e as AppError).context['path'] === 'spec.packages[1].manifest.links[0].path');
  assert.equal(parseClusterPackageVersion(obj(evil), coordinatorAllowList({ paths: ['/usr/bin/evil'], services: [] })).length, 2, 'allowed by the operator');
});

test('the agent\'s own package: its manifest is exactly its own, and no other package restarts the agent (refused at apply, with the path)', () => {
  const agent = builtinManifests['nodekeeper-agent']!;
  assert.doesNotThrow(() => checkManifestAtApply(agent, allow, 'm'));
  const cases: Array<[PackageManifest, string]> = [
    [{ ...agent, links: [{ path: '/usr/bin/kubelet', target: 'bin/nodekeeper-agent' }] }, 'm.links'],
    [{ ...agent, service: 'kubelet.service' }, 'm.service'],
    [{ ...agent, healthProbe: 'none' }, 'm.healthProbe'],
    [{ ...base, service: 'nodekeeper-agent.service' }, 'm.service'],
    [{ ...base, healthProbe: 'agent' }, 'm.healthProbe'],
  ];
  for (const [m, path] of cases) {
    assert.throws(() => checkManifestAtApply(m, allow, 'm'), (err: unknown) => hasCode(err, 'NK_AGENT_UPGRADE_MANIFEST_INVALID') && (err as AppError).context['path'] === path, JSON.stringify(m));
  }
});
