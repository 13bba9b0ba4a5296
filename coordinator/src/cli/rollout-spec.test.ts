import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError } from '@nodekeeper/common';
import { parseBatches, parseIntOrPercent, parsePackagePin, rolloutFromFlags } from './rollout-spec.ts';

function throwsCode(fn: () => unknown, code: string, text?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.code, code);
    if (text !== undefined) assert.ok(err.message.includes(text), `${err.message} lacks ${text}`);
    return true;
  });
}

describe('rolloutFromFlags', () => {
  it('fills the documented defaults', () => {
    assert.deepEqual(rolloutFromFlags('web-kubelet', { package: ['kubelet=1.31.3'] }), {
      apiVersion: 'nodekeeper.io/v1alpha1',
      kind: 'Rollout',
      metadata: { name: 'web-kubelet' },
      spec: {
        packages: [{ package: 'kubelet', version: '1.31.3' }],
        selector: {},
        strategy: { canary: { count: 1 }, soakSeconds: 300, batches: [10, 50, 100], maxUnavailable: 1, maxFailures: 1, onFailure: 'Pause' },
      },
    });
  });

  it('maps every flag', () => {
    const r = rolloutFromFlags('r1', {
      package: ['containerd=1.7.22', 'kubelet=v1.31.3'],
      selector: 'role=worker,zone=zone-a',
      names: 'node-1, node-2',
      canary: '10%',
      soak: '1m30s',
      batchSize: '5',
      maxUnavailable: '20%',
      maxFailures: '2',
      onFailure: 'Rollback',
      maxPerZone: '1',
      allowDowngrade: true,
    });
    assert.deepEqual(r.spec, {
      packages: [{ package: 'containerd', version: '1.7.22' }, { package: 'kubelet', version: 'v1.31.3' }],
      selector: { matchLabels: { role: 'worker', zone: 'zone-a' }, names: ['node-1', 'node-2'] },
      strategy: { canary: { percent: 10 }, soakSeconds: 90, batchSize: 5, maxUnavailable: '20%', maxFailures: 2, onFailure: 'Rollback', maxPerZone: 1 },
      allowDowngrade: true,
    });
  });

  it('maps the --drain-* flags to spec.drain, and refuses bad ones', () => {
    const r = rolloutFromFlags('r', { package: ['kubelet=1.31.3'], drainForce: true, drainDeleteEmptydirData: true, drainGracePeriod: '0', drainTimeout: '10m' });
    assert.deepEqual(r.spec.drain, { force: true, deleteEmptyDirData: true, gracePeriodSeconds: 0, timeoutSeconds: 600 });
    assert.equal(rolloutFromFlags('r', { package: ['kubelet=1.31.3'] }).spec.drain, undefined);
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], drainGracePeriod: '-1' }), 'NK_CLI_USAGE', '--drain-grace-period');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], drainTimeout: '500ms' }), 'NK_CLI_BAD_DURATION', '--drain-timeout');
  });

  it('refuses bad flags with what is wrong', () => {
    throwsCode(() => rolloutFromFlags('r', { package: [] }), 'NK_CLI_USAGE', 'at least one --package');
    throwsCode(() => rolloutFromFlags('R_1', { package: ['kubelet=1.31.3'] }), 'NK_CLI_USAGE', 'invalid rollout name');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3', 'kubelet=1.31.4'] }), 'NK_CLI_USAGE', 'given twice');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], selector: 'zone!=a' }), 'NK_CLI_BAD_SELECTOR', 'only key=value');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], soak: '5' }), 'NK_CLI_BAD_DURATION', '--soak');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], soak: '1500ms' }), 'NK_CLI_BAD_DURATION', 'whole seconds');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], onFailure: 'ignore' }), 'NK_CLI_USAGE', 'pause or rollback');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], batches: '50,100', batchSize: '2' }), 'NK_CLI_USAGE', 'cannot be combined');
    throwsCode(() => rolloutFromFlags('r', { package: ['kubelet=1.31.3'], maxUnavailable: '0' }), 'NK_CLI_USAGE', 'at least 1');
  });
});

describe('flag parsers', () => {
  it('parsePackagePin needs NAME=VERSION with a real version', () => {
    assert.deepEqual(parsePackagePin('cni-plugins=1.1.1+ds1'), { package: 'cni-plugins', version: '1.1.1+ds1' });
    throwsCode(() => parsePackagePin('kubelet'), 'NK_CLI_USAGE', 'NAME=VERSION');
    throwsCode(() => parsePackagePin('kubelet=latest'), 'NK_CLI_USAGE', 'not a version');
    throwsCode(() => parsePackagePin('Kubelet=1.31.3'), 'NK_CLI_USAGE', 'not a package name');
  });

  it('parseIntOrPercent: numbers stay numbers, percents stay strings, 1% to 100%', () => {
    assert.equal(parseIntOrPercent('3', '--x', 1), 3);
    assert.equal(parseIntOrPercent('010%', '--x', 1), '10%');
    throwsCode(() => parseIntOrPercent('0%', '--x', 1), 'NK_CLI_USAGE', '1% to 100%');
    throwsCode(() => parseIntOrPercent('101%', '--x', 1), 'NK_CLI_USAGE');
    throwsCode(() => parseIntOrPercent('1.5', '--x', 1), 'NK_CLI_USAGE');
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), (n) => parseIntOrPercent(`${n}%`, '--x', 1) === `${n}%` && parseIntOrPercent(String(n), '--x', 1) === n));
  });

  it('parseBatches accepts strictly increasing percents ending at 100, and nothing else', () => {
    assert.deepEqual(parseBatches('10,50,100'), [10, 50, 100]);
    assert.deepEqual(parseBatches('25%, 100%'), [25, 100]);
    throwsCode(() => parseBatches('50,50,100'), 'NK_CLI_USAGE', 'must increase');
    throwsCode(() => parseBatches('10,50'), 'NK_CLI_USAGE', 'last batch must be 100');
    throwsCode(() => parseBatches('0,100'), 'NK_CLI_USAGE', 'percent from 1 to 100');
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 6 }), (xs) => {
      const sorted = [...xs].sort((a, b) => a - b);
      assert.deepEqual(parseBatches([...sorted, 100].join(',')), [...sorted, 100]);
      if (xs.length >= 2 && xs.join() !== sorted.join()) assert.throws(() => parseBatches([...xs, 100].join(',')));
    }));
  });
});
