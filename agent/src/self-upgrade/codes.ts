/** Codes of the agent's own upgrade (`package.install` of `nodekeeper-agent`), documented in docs/errors.md. */
import { ManifestPolicyCode, type ProtocolCode } from '@nodekeeper/protocol';
import type { AgentCode } from '../codes.ts';

export const SelfUpgradeErrorCode = {
  /** The new version did not confirm in time (crashed, crash-looped, never connected): the node switched back by itself. */
  reverted: 'NK_AGENT_UPGRADE_REVERTED',
  /** The running agent is not the version `current` names (run from the sources, or a hand-made install): it cannot switch itself. */
  notInLayout: 'NK_AGENT_UPGRADE_NOT_IN_LAYOUT',
  /** The agent does not run under systemd: nothing would restart it into the new version, and no guard would take it back. */
  needsSystemd: 'NK_AGENT_UPGRADE_NEEDS_SYSTEMD',
  /** The manifest of `nodekeeper-agent` is not the agent's own, or another package names the agent's unit or health. */
  manifestInvalid: ManifestPolicyCode.agentManifest,
} as const satisfies Record<string, AgentCode | ProtocolCode>;
