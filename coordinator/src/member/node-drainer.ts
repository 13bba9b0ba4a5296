/**
 * Cordon, then drain, and on any failure undo our own cordon: the one sequence every
 * disruptive piece of work uses before it touches a node (a rollout's install, a
 * remediation reinstall, a reboot, `nkctl machine drain`). Exported so each caller says
 * only who it is (`by`, the cordon mark) and its options, and records the outcome as an
 * event with the shared reasons: Drained, DrainRefused, DrainStopped.
 */
import { AppError } from '@nodekeeper/common';
import type { DrainOptions, DrainResult } from './drain.ts';
import type { MemberCluster } from './member-cluster.ts';

/** The cordon mark of a remediation reinstall's drain, followed by the rule's name. */
export const REMEDIATION_DRAIN_MARK = 'remediation-drain/';

export type DrainEventReason = 'Drained' | 'DrainRefused' | 'DrainStopped';

/** The event reason a drain failure is recorded with: DrainRefused for pods the rules refuse, else DrainStopped. */
export function drainFailureReason(code: string): Exclude<DrainEventReason, 'Drained'> {
  return code === 'NK_DRAIN_REFUSED' ? 'DrainRefused' : 'DrainStopped';
}

export interface CordonAndDrainResult extends DrainResult {
  /** 'already-cordoned': an operator's cordon, left as it is afterwards. */
  readonly cordon: 'cordoned' | 'already-cordoned';
}

/**
 * Cordons `node` marked `by`, drains it, and returns what was evicted. On failure (any
 * code: NK_DRAIN_REFUSED, NK_DRAIN_BLOCKED, NK_DRAIN_TIMEOUT, NK_DRAIN_CANCELLED,
 * NK_MEMBER_*), uncordons the node if this call cordoned it and throws the same code
 * with `; node uncordoned` (or what happened instead) added to the message.
 * `onCordoned` hears the cordon's result before the drain starts (for a Cordoned event).
 */
export async function cordonAndDrain(member: Pick<MemberCluster, 'cordon' | 'uncordon' | 'drain'>, node: string, by: string, opts: DrainOptions, onCordoned: (result: 'cordoned' | 'already-cordoned') => void = () => {}): Promise<CordonAndDrainResult> {
  const cordon = await member.cordon(node, by);
  onCordoned(cordon);
  try {
    const r = await member.drain(node, opts);
    return { ...r, cordon };
  } catch (err) {
    const e = err instanceof AppError ? err : new AppError('NK_MEMBER_API_ERROR', (err as Error).message, { cause: err });
    const undone = cordon === 'cordoned'
      ? await member.uncordon(node, by).catch((u: unknown) => `uncordon failed: ${(u as Error).message}`)
      : 'left cordoned as the operator had it';
    throw new AppError(e.code, `${e.message}; node ${undone}`, { cause: e, context: { ...e.context, node, uncordon: undone } });
  }
}
