/**
 * Error codes of the package installer (docs/errors.md lists them). Each names the
 * fault precisely, so the coordinator and an operator know which step failed and why.
 */
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
} as const;
export type InstallErrorCode = (typeof InstallErrorCode)[keyof typeof InstallErrorCode];
