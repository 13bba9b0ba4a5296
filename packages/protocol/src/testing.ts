/**
 * Fixtures for tests on both sides of the protocol (import from
 * '@nodekeeper/protocol/testing'). Not used by product code.
 */
import type { NodeReport } from './status.ts';

const at = '2026-11-24T02:00:00.000Z';
/** A valid, healthy full report. */
export const sampleReport: NodeReport = {
  identity: { machineId: 'abc123', hostname: 'node-1', addresses: ['10.0.0.1'], zone: 'z1', labels: { pool: 'a' } },
  kubelet: { health: 'healthy', reason: 'HealthzOk', message: 'ok', version: { raw: 'Kubernetes v1.31.2', semver: '1.31.2', source: 'binary' }, observedAt: at, service: null },
  runtime: {
    health: 'healthy', reason: 'RuntimeReady', message: '', observedAt: at,
    version: { raw: '1.6.20~ds1', semver: '1.6.20', source: 'cri' }, runtimeName: 'containerd', runtimeApiVersion: 'v1',
    conditions: [{ type: 'RuntimeReady', status: true, reason: '', message: '' }], service: null,
  },
  cni: { health: 'healthy', reason: 'ConfigValid', message: '', observedAt: at, version: null, configFile: '/etc/cni/net.d/10-bridge.conflist', networkName: 'nk', cniVersion: '1.0.0', plugins: [] },
  host: {
    health: 'healthy', reason: 'NoPressure', message: '', observedAt: at, version: null, os: 'Debian 12', kernel: '6.1', arch: 'x64',
    cpus: 2, memoryTotalBytes: 1, memoryAvailableBytes: 1, uptimeSeconds: 5, disks: [], pressure: { disk: false, memory: false, pid: false },
  },
};

