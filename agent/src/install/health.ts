/**
 * The health gate after a switch: the manifest's probe (the same probes that feed the
 * reports) must say healthy, and for the kubelet the version it reports must be the
 * version just switched to, or a stale process answering healthz would pass for the new one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { toSemver } from '@nodekeeper/common';
import type { PackageManifest } from '@nodekeeper/protocol';
import type { ProbeContext } from '../probes/context.ts';
import { probeCni } from '../probes/cni.ts';
import { probeRuntime } from '../probes/cri.ts';
import { probeKubelet } from '../probes/kubelet.ts';

export type HealthProbeKind = PackageManifest['healthProbe'];

export interface HealthVerdict {
  readonly healthy: boolean;
  readonly message: string;
}

/** One look at a package's health; `version` is the version that should be active. */
export type HealthCheck = (probe: HealthProbeKind, version: string) => Promise<HealthVerdict>;

/** The real health check over the agent's probes; `agentVersion` is the version this agent runs. */
export function probeHealthCheck(ctx: ProbeContext, agentVersion = ''): HealthCheck {
  return async (probe, version) => {
    switch (probe) {
      case 'none':
        return { healthy: true, message: 'no health probe' };
      case 'agent':
        // Asked only when the agent's own version is already active: it answers by running.
        return version === agentVersion ? { healthy: true, message: `nodekeeper-agent ${version} is running` } : { healthy: false, message: `nodekeeper-agent ${agentVersion} is running, not ${version}` };
      case 'kubelet': {
        const s = await probeKubelet(ctx);
        if (s.health !== 'healthy') return { healthy: false, message: `kubelet ${s.health}: ${s.message}` };
        // An adopted version's name is not a version; then the binary decides alone.
        const want = toSemver(version.startsWith('adopted-') ? '' : version);
        if (want !== null && s.version?.semver !== want) {
          return { healthy: false, message: `kubelet reports ${s.version?.raw ?? 'no version'}, expected ${version}` };
        }
        return { healthy: true, message: `kubelet healthy at ${s.version?.raw ?? version}` };
      }
      case 'runtime': {
        const s = await probeRuntime(ctx);
        return { healthy: s.health === 'healthy', message: `runtime ${s.health}: ${s.message}` };
      }
      case 'cni': {
        const s = await probeCni(ctx);
        return { healthy: s.health === 'healthy', message: `cni ${s.health}: ${s.message}` };
      }
    }
  };
}

/**
 * Polls `check` until healthy or `timeoutMs` passes; returns the last verdict. At least
 * one look is always taken, however short the timeout.
 */
export async function waitHealthy(check: HealthCheck, probe: HealthProbeKind, version: string, timeoutMs: number, intervalMs = 500): Promise<HealthVerdict> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check(probe, version);
    if (v.healthy || Date.now() + intervalMs > deadline) return v;
    await sleep(intervalMs);
  }
}
