/**
 * The one place a reboot drains a Node: kubectl drain's rules (member/drain.ts) with the
 * reboot's own options (spec.reboot.drain: force, deleteEmptyDirData, timeout, grace
 * period), so a refusal names the pods and a blocking budget says what continues.
 */
import type { DrainResult } from '../member/drain.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import type { RebootDrain } from '../rollout/spec.ts';

export function drainForReboot(member: MemberCluster, node: string, opts: RebootDrain, progress: (line: string) => void, stop: () => string | null): Promise<DrainResult> {
  return member.drain(node, {
    force: opts.force, deleteEmptyDirData: opts.deleteEmptyDirData, timeoutMs: opts.timeoutSeconds * 1000, gracePeriodSeconds: opts.gracePeriodSeconds,
    progress, stop,
  });
}
