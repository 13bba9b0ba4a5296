/**
 * What a starting agent does about its own upgrade: pure, from what is on disk and the
 * version it runs. Called once at start ("what was I doing when I died?").
 */
import { AGENT_PACKAGE } from '@nodekeeper/protocol';
import { InstallErrorCode } from '../install/codes.ts';
import { SelfUpgradeErrorCode } from './codes.ts';
import type { PendingUpgrade } from './record.ts';

export const SELF_PACKAGE = AGENT_PACKAGE;
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
  return { kind: 'failed', pending: p, switchBack, code: InstallErrorCode.interrupted, message: `the agent stopped before it switched to ${p.to}; it stays at ${p.from}` };
}
