/**
 * The kubelet: is it serving healthz, which version is installed, what does the
 * service manager say. Never throws for node faults.
 */
import { stat } from 'node:fs/promises';
import { versionInfo } from '@nodekeeper/common';
import type { Health, KubeletStatus, VersionInfo } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import { observedAt, type ProbeContext } from './context.ts';
import { checkHealthz, type HealthzOutcome } from './healthz.ts';
import { describeFailure, firstLine } from './run-command.ts';
import { probeService } from './service.ts';

type BinaryVersion =
  | { readonly kind: 'found'; readonly version: VersionInfo }
  | { readonly kind: 'missing'; readonly path: string }
  | { readonly kind: 'unreadable'; readonly path: string; readonly detail: string };

/**
 * Reads the version the kubelet binary reports (`Kubernetes v1.31.2`). The binary is the
 * configured path under the host root.
 */
export async function readKubeletVersion(ctx: ProbeContext): Promise<BinaryVersion> {
  const { hostRoot, kubelet } = ctx.config;
  const file = resolveHostPath(hostRoot, kubelet.binary);
  try {
    if (!(await stat(file)).isFile()) return { kind: 'missing', path: file };
  } catch {
    return { kind: 'missing', path: file };
  }
  const r = await ctx.run(file, ['--version'], { timeoutMs: kubelet.timeoutMs, maxBytes: 4096 });
  const line = firstLine(r.stdout);
  if (r.code !== 0 || r.spawnError !== null || line === '') {
    return { kind: 'unreadable', path: file, detail: line === '' && r.code === 0 ? `${file} --version printed nothing` : describeFailure(file, r) };
  }
  return { kind: 'found', version: versionInfo(line, 'binary') };
}

/** How a healthz outcome reads in a status: health, reason, message. */
export function classifyHealthz(url: string, outcome: HealthzOutcome): { health: Health; reason: string; message: string } {
  switch (outcome.kind) {
    case 'ok':
      return { health: 'healthy', reason: 'HealthzOk', message: `${url} answered ok` };
    case 'refused':
      return { health: 'unhealthy', reason: 'HealthzRefused', message: `${url}: ${outcome.detail}; is the kubelet running?` };
    case 'timeout':
      return { health: 'unhealthy', reason: 'HealthzTimeout', message: outcome.detail };
    case 'failed':
      return {
        health: 'unhealthy',
        reason: 'HealthzFailed',
        message: `${url} answered ${outcome.status}${outcome.firstLine === '' ? '' : `: ${outcome.firstLine}`}`,
      };
    case 'error':
      return { health: 'unhealthy', reason: 'HealthzError', message: `${url}: ${outcome.detail}` };
  }
}

/** Probes the kubelet's healthz, binary version and service state, concurrently. */
export async function probeKubelet(ctx: ProbeContext): Promise<KubeletStatus> {
  const { kubelet } = ctx.config;
  const [outcome, binary, service] = await Promise.all([
    checkHealthz(kubelet.healthzUrl, kubelet.timeoutMs),
    readKubeletVersion(ctx),
    probeService(kubelet.unit, ctx),
  ]);
  const verdict = classifyHealthz(kubelet.healthzUrl, outcome);
  const base = { version: null, service, observedAt: observedAt(ctx) };
  switch (binary.kind) {
    case 'found':
      return { ...base, ...verdict, version: binary.version };
    case 'missing':
      // A kubelet still answering without its binary dies for good on its next restart.
      return {
        ...base,
        health: 'unhealthy',
        reason: 'BinaryNotFound',
        message: `kubelet binary ${kubelet.binary} not found (looked at ${binary.path}); healthz: ${verdict.message}`,
      };
    case 'unreadable':
      return { ...base, ...verdict, message: `${verdict.message}; version unknown: ${binary.detail}` };
  }
}
