/**
 * The one place a reboot drains a Node. The shared drain options (force,
 * deleteEmptyDirData, timeout, grace period) are passed through as far as the member
 * cluster's drain takes them today; the lead adapts this wrapper to `member.drain(node,
 * opts)` when the kubectl-grade drain lands (issue 12, item 3).
 */
import type { DrainResult, MemberCluster } from '../member/member-cluster.ts';
import type { RebootDrain } from '../rollout/spec.ts';

export function drainForReboot(member: MemberCluster, node: string, opts: RebootDrain, progress: (line: string) => void, stop: () => string | null): Promise<DrainResult> {
  return member.drain(node, progress, opts.timeoutSeconds * 1000, stop);
}
