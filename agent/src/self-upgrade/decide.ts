/**
 * What a starting agent does about its own upgrade: pure, from what is on disk and the
 * version it runs. Called once at start ("what was I doing when I died?").
 */
import type { PackageManifest } from '@nodekeeper/protocol';
import { SelfUpgradeErrorCode } from './codes.ts';
import type { PendingUpgrade } from './record.ts';

export const SELF_PACKAGE = 'nodekeeper-agent';
export const SELF_SERVICE = 'nodekeeper-agent.service';
export const ROLLBACK_TIMER = 'nodekeeper-agent-rollback.timer';

export type StartDecision =
  /** Nothing pending. */
  | { readonly kind: 'none' }
  /** This is the new version: confirm once connected and reported, then commit. */
  | { readonly kind: 'confirm'; readonly pending: PendingUpgrade }
  /** The upgrade did not take; `current` must name `pending.from` again (switchBack) and the command fails. */
  | { readonly kind: 'failed'; readonly pending: PendingUpgrade; readonly switchBack: boolean; readonly code: string; readonly message: string }
  /** A record that is not whole: removed, the node stays on what `current` names. */
  | { readonly kind: 'corrupt' };

export interface StartState {
  readonly pending: PendingUpgrade | 'corrupt' | null;
  /** The version this process runs (its VERSION file). */
  readonly running: string;
  /** What `current` names now. */
  readonly current: string | null;
  /** The guard's reason when it switched back, else null. */
  readonly reverted: string | null;
}

export function decideOnStart(s: StartState): StartDecision {
  if (s.pending === null) return { kind: 'none' };
  if (s.pending === 'corrupt') return { kind: 'corrupt' };
  const p = s.pending;
  if (s.running === p.to && s.current === p.to) return { kind: 'confirm', pending: p };
  const switchBack = s.current !== p.from;
  if (s.reverted !== null) {
    return { kind: 'failed', pending: p, switchBack, code: SelfUpgradeErrorCode.reverted, message: `nodekeeper-agent ${p.to} did not reconnect and report within its deadline (${s.reverted}); the node switched back to ${p.from} by itself` };
  }
  if (s.current === p.to) {
    // Switched, but this process is not the new version (run from elsewhere): go back.
    return { kind: 'failed', pending: p, switchBack, code: SelfUpgradeErrorCode.reverted, message: `nodekeeper-agent ${p.to} was switched to, but ${s.running} started; switched back to ${p.from}` };
  }
  return { kind: 'failed', pending: p, switchBack, code: 'NK_INSTALL_INTERRUPTED', message: `the agent stopped before it switched to ${p.to}; it stays at ${p.from}` };
}

/**
 * Why `m` (for package `pkg`) breaks the rules of the agent's own package, or null: the
 * agent's manifest must be exactly its own (a tarball run through `current` by its unit,
 * judged by the `agent` health); no other package may name its unit or its health.
 */
export function selfManifestProblem(pkg: string, m: PackageManifest): string | null {
  if (pkg === SELF_PACKAGE) {
    if (m.format !== 'tar.gz') return `${SELF_PACKAGE} is a tar.gz release, not ${m.format}`;
    if (m.links.length !== 0) return `${SELF_PACKAGE} has no links: its unit runs it through ${SELF_PACKAGE}/current`;
    if (m.service !== SELF_SERVICE) return `${SELF_PACKAGE}'s service must be ${SELF_SERVICE}, not ${JSON.stringify(m.service)}`;
    if (m.healthProbe !== 'agent') return `${SELF_PACKAGE}'s health probe must be "agent", not "${m.healthProbe}"`;
    return null;
  }
  if (m.service === SELF_SERVICE) return `only ${SELF_PACKAGE} may restart ${SELF_SERVICE}`;
  if (m.healthProbe === 'agent') return `only ${SELF_PACKAGE} is judged by the "agent" health probe`;
  return null;
}
