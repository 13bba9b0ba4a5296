import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { defaultProbeConfig, resolveHostPath } from './config.ts';

test('resolveHostPath joins host paths under the host root', () => {
  assert.equal(resolveHostPath('/', '/etc/machine-id'), '/etc/machine-id');
  assert.equal(resolveHostPath('/host', '/etc/machine-id'), '/host/etc/machine-id');
  assert.equal(resolveHostPath('/tmp/n1/', '/var/lib/../lib/kubelet/'), '/tmp/n1/var/lib/kubelet');
  assert.equal(resolveHostPath('/host', 'etc/cni/net.d'), '/host/etc/cni/net.d');
});

test('resolveHostPath refuses paths that climb out of the host root', () => {
  assert.throws(() => resolveHostPath('/host', '/../etc/shadow'), TypeError);
  assert.throws(() => resolveHostPath('/host', '/etc/../../etc/shadow'), TypeError);
  assert.throws(() => resolveHostPath('relative', '/etc'), TypeError);
  assert.throws(() => resolveHostPath('/host', ''), TypeError);
});

test('resolveHostPath never returns a path outside the host root', () => {
  const segment = fc.constantFrom('..', '.', '', 'etc', 'a', 'b..', '...');
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
      const p = `/${segments.join('/')}`;
      let out: string;
      try {
        out = resolveHostPath('/host', p);
      } catch (err) {
        assert.ok(err instanceof TypeError);
        return;
      }
      assert.ok(out === '/host' || out.startsWith('/host/'), out);
      const rel = path.relative('/host', out);
      assert.ok(rel !== '..' && !rel.startsWith('../'), out);
    }),
  );
});

test('defaultProbeConfig carries the production paths and is frozen', () => {
  assert.equal(defaultProbeConfig.hostRoot, '/');
  assert.equal(defaultProbeConfig.kubelet.healthzUrl, 'http://127.0.0.1:10248/healthz');
  assert.equal(defaultProbeConfig.runtime.socket, '/run/containerd/containerd.sock');
  assert.deepEqual(defaultProbeConfig.cni.binDirs, ['/opt/cni/bin']);
  assert.ok(Object.isFrozen(defaultProbeConfig) && Object.isFrozen(defaultProbeConfig.cni));
});
