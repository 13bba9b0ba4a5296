/**
 * Error codes of the package installer (docs/errors.md lists them). Each names the
 * fault precisely, so the coordinator and an operator know which step failed and why.
 */
import { ManifestPolicyCode, type ProtocolCode } from '@nodekeeper/protocol';
import type { AgentCode } from '../codes.ts';

export const InstallErrorCode = {
  /** The command's params do not match InstallParams, or name a package other than the manifest's. */
  badParams: 'NK_INSTALL_BAD_PARAMS',
  /** Another install of the same package is running on this agent. */
  busy: 'NK_INSTALL_BUSY',
  /** The artifact could not be fetched: unreachable, refused, an HTTP error status, TLS failure. */
  downloadFailed: 'NK_INSTALL_DOWNLOAD_FAILED',
  /** The download did not finish within its time limit, or stalled. */
  downloadTimeout: 'NK_INSTALL_DOWNLOAD_TIMEOUT',
  /** The server sent (or announced) more bytes than the artifact's declared size. */
  tooLarge: 'NK_INSTALL_TOO_LARGE',
  /** The body ended before the artifact's declared size. */
  truncated: 'NK_INSTALL_TRUNCATED',
  /** The artifact's sha256 differs from the one in the command. */
  digestMismatch: 'NK_INSTALL_DIGEST_MISMATCH',
  /** The signature does not verify against any trusted key. */
  signatureInvalid: 'NK_INSTALL_SIGNATURE_INVALID',
  /** Trusted keys are configured and the artifact carries no signature. */
  unsigned: 'NK_INSTALL_UNSIGNED',
  /** Unpacking or preparing the version directory failed (bad archive, missing link target, disk). */
  stageFailed: 'NK_INSTALL_STAGE_FAILED',
  /** A link path on the host is in a state the installer will not overwrite. */
  linkConflict: 'NK_INSTALL_LINK_CONFLICT',
  /** The version directory exists with different content than this artifact and is active. */
  versionConflict: 'NK_INSTALL_VERSION_CONFLICT',
  /** The atomic switch of the `current` link failed. */
  switchFailed: 'NK_INSTALL_SWITCH_FAILED',
  /** The service manager could not restart the package's service. */
  restartFailed: 'NK_INSTALL_RESTART_FAILED',
  /** The health probe did not report healthy (at the target version) within healthTimeoutMs. */
  healthTimeout: 'NK_INSTALL_HEALTH_TIMEOUT',
  /** Recording the installed version failed. */
  commitFailed: 'NK_INSTALL_COMMIT_FAILED',
  /**
   * Switching back to the previous version failed, or it did not come back healthy (after a
   * failed install, or in a `package.rollback`, which then switches forward again).
   */
  rollbackFailed: 'NK_INSTALL_ROLLBACK_FAILED',
  /** `package.rollback` found no earlier version to return to (no `previous`, or its directory is gone). */
  noPrevious: 'NK_INSTALL_NO_PREVIOUS',
  /** The agent stopped mid-install before the switch; recovery cleaned up and nothing changed. */
  interrupted: 'NK_INSTALL_INTERRUPTED',
  /** A trusted key file is missing, unreadable or not an ed25519 public key. */
  badTrustedKey: 'NK_INSTALL_TRUSTED_KEY_INVALID',
  /** The journal or command store could not be written or read. */
  stateFailed: 'NK_INSTALL_STATE_FAILED',
  /** A link target is absolute, has `..`, or resolves (realpath) outside its version directory. */
  targetOutside: ManifestPolicyCode.targetOutside,
  /** A link path is not on the install allow-list (built-in paths plus --allow-install-path). */
  pathNotAllowed: ManifestPolicyCode.pathNotAllowed,
  /** The manifest's service is not a `*.service` on the allow-list (built-in plus --allow-install-service). */
  serviceNotAllowed: ManifestPolicyCode.serviceNotAllowed,
  /** A parent directory of a link path is a symlink or not a directory; nothing is made through it. */
  linkParentUnsafe: 'NK_INSTALL_LINK_PARENT_UNSAFE',
  /** A first install found a file at a link path that this package may not adopt (move it aside). */
  adoptNotAllowed: 'NK_INSTALL_ADOPT_NOT_ALLOWED',
  /** The archive holds an absolute or `..` path, a link out of the tree, a device or fifo, or a setuid/setgid mode. */
  archiveUnsafe: 'NK_INSTALL_ARCHIVE_UNSAFE',
  /** The archive unpacks to more bytes or entries than the agent's bound (a gzip bomb). */
  archiveTooLarge: 'NK_INSTALL_ARCHIVE_TOO_LARGE',
  /** The version is lower than the active one, and neither a coordinator grant nor --allow-downgrade allows it. */
  downgradeRefused: 'NK_INSTALL_DOWNGRADE_REFUSED',
  /** An unpacked version to return to no longer matches the content hash recorded when it was staged. */
  versionTampered: 'NK_INSTALL_VERSION_TAMPERED',
  /** An install journal record could not be read; it was moved to journal/quarantine and the command answered with this. */
  journalCorrupt: 'NK_INSTALL_JOURNAL_CORRUPT',
} as const satisfies Record<string, AgentCode | ProtocolCode>;
export type InstallErrorCode = (typeof InstallErrorCode)[keyof typeof InstallErrorCode];
