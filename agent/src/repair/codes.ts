/**
 * Error codes of the agent's repairs (service.restart, config.restore, node.reboot, local
 * self-repair). docs/errors.md lists them; docs/repairs.md says when each is answered.
 */
import type { ProtocolCode } from '@nodekeeper/protocol';
import type { AgentCode } from '../codes.ts';

export const RepairErrorCode = {
  /** The params do not match the command's schema, or disagree with themselves (e.g. a group-writable mode). */
  badParams: 'NK_REPAIR_BAD_PARAMS',
  /** Another repair of the same unit or path is running on this agent. */
  busy: 'NK_REPAIR_BUSY',
  /** The service manager could not restart the unit. */
  restartFailed: 'NK_REPAIR_RESTART_FAILED',
  /** The repair was done, but the related probe did not say healthy within the timeout. */
  unhealthy: 'NK_REPAIR_UNHEALTHY',
  /** `config.restore` named a path outside the agent's allowed config dirs (or through a symlink); nothing was written. */
  pathNotAllowed: 'NK_REPAIR_PATH_NOT_ALLOWED',
  /** Writing the restored config failed (disk, permissions, a directory in the way). */
  writeFailed: 'NK_REPAIR_WRITE_FAILED',
  /** `node.reboot` on an agent whose own config does not allow reboots (`--allow-reboot`). */
  rebootNotAllowed: 'NK_REPAIR_REBOOT_NOT_ALLOWED',
  /** `systemctl reboot` failed. */
  rebootFailed: 'NK_REPAIR_REBOOT_FAILED',
  /** The durable record of repairs (`<stateDir>/repairs/`) could not be read or written. */
  stateFailed: 'NK_REPAIR_STATE_FAILED',
} as const satisfies Record<string, AgentCode | ProtocolCode>;
export type RepairErrorCode = (typeof RepairErrorCode)[keyof typeof RepairErrorCode];
