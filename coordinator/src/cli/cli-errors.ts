/**
 * nkctl's error codes and exit codes. Every failure ends as one stderr line,
 * `error: <message> (<NK_CODE>)`, and an exit code a script can branch on:
 *   0 ok; 1 usage (bad flag, duration, selector, config); 2 not found;
 *   3 unauthorized or forbidden; 4 server unreachable, TLS failure, timeout;
 *   5 any other server error or a response nkctl cannot read;
 *   6 a rollout that `rollout status` watched stopped short of Completed (Paused,
 *     Failed or RolledBack).
 */
import { AppError } from '@nodekeeper/common';

export const CliErrorCode = {
  /** A flag, argument or command is wrong (commander's parse errors, conflicting flags). */
  usage: 'NK_CLI_USAGE',
  /** A duration flag (--ttl, --request-timeout) is not a Go-style duration. */
  badDuration: 'NK_CLI_BAD_DURATION',
  /** A label selector (-l) cannot be parsed. */
  badSelector: 'NK_CLI_BAD_SELECTOR',
  /** The nkctl config file is not valid YAML or has a bad field. */
  badConfig: 'NK_CLI_BAD_CONFIG',
  /** A retired shared variable (NODEKEEPER_CONFIG, _SERVER, _TOKEN, _CA) is set; nkctl reads NKCTL_* now. */
  envRetired: 'NK_CLI_ENV_RETIRED',
  /** A file named by a flag, env var or the config (config, token file, CA) cannot be read. */
  fileUnreadable: 'NK_CLI_FILE_UNREADABLE',
  /** No coordinator URL is configured, or it is not an http(s) URL. */
  badServer: 'NK_CLI_BAD_SERVER',
  /** No API credential is configured. */
  noCredential: 'NK_CLI_NO_CREDENTIAL',
  /** Nothing listens at the server's address. */
  connectionRefused: 'NK_CLI_CONNECTION_REFUSED',
  /** The host cannot be resolved or reached, or the connection broke. */
  unreachable: 'NK_CLI_UNREACHABLE',
  /** The TLS handshake failed (untrusted or mismatched certificate, not TLS). */
  tlsFailed: 'NK_CLI_TLS_FAILED',
  /** No complete response within --request-timeout. */
  timeout: 'NK_CLI_TIMEOUT',
  /** The server answered with something that is not the documented JSON shape. */
  badResponse: 'NK_CLI_BAD_RESPONSE',
  /** The server failed without a code of its own in the body. */
  serverError: 'NK_CLI_SERVER_ERROR',
  /** A manifest for apply/create -f is not YAML/JSON, or a document has no known kind or name. */
  badManifest: 'NK_CLI_BAD_MANIFEST',
  /** The --sign key is not a PEM ed25519 private key. */
  badKey: 'NK_CLI_BAD_KEY',
  /** The server stored an artifact whose digest or size differs from the file's (the file changed during the push?). */
  digestMismatch: 'NK_CLI_DIGEST_MISMATCH',
  /** A rollout stopped short of Completed: Paused, Failed or RolledBack. */
  rolloutStopped: 'NK_CLI_ROLLOUT_STOPPED',
} as const;
export type CliErrorCode = (typeof CliErrorCode)[keyof typeof CliErrorCode];

export const ExitCode = {
  ok: 0,
  usage: 1,
  notFound: 2,
  unauthorized: 3,
  unreachable: 4,
  serverError: 5,
  rolloutStopped: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const USAGE: ReadonlySet<string> = new Set([
  CliErrorCode.usage,
  CliErrorCode.badDuration,
  CliErrorCode.badSelector,
  CliErrorCode.badConfig,
  CliErrorCode.envRetired,
  CliErrorCode.fileUnreadable,
  CliErrorCode.badServer,
  CliErrorCode.noCredential,
  CliErrorCode.badManifest,
  CliErrorCode.badKey,
  'NK_HOST_CLUSTER_NAME_INVALID',
  'NK_HOST_TOKEN_INVALID',
  'NK_HOST_KUBECONFIG_INVALID',
]);
const UNREACHABLE: ReadonlySet<string> = new Set([
  CliErrorCode.connectionRefused,
  CliErrorCode.unreachable,
  CliErrorCode.tlsFailed,
  CliErrorCode.timeout,
  'NK_HOST_UNREACHABLE',
]);

/** A usage error: exit 1. */
export function usageError(code: CliErrorCode, message: string, opts: { cause?: unknown; context?: Record<string, unknown> } = {}): AppError {
  return new AppError(code, message, opts);
}

/**
 * The exit code for an error. Server errors carry their HTTP status in
 * `context.status` and are judged by it, whatever code the server chose.
 */
export function exitCodeFor(err: unknown): ExitCode {
  if (!(err instanceof AppError)) return ExitCode.serverError;
  const status = err.context['status'];
  if (typeof status === 'number') {
    if (status === 404) return ExitCode.notFound;
    if (status === 401 || status === 403) return ExitCode.unauthorized;
    return ExitCode.serverError;
  }
  if (USAGE.has(err.code)) return ExitCode.usage;
  if (err.code === 'NK_HOST_UNAUTHORIZED' || err.code === 'NK_HOST_FORBIDDEN') return ExitCode.unauthorized;
  if (err.code === CliErrorCode.rolloutStopped) return ExitCode.rolloutStopped;
  if (UNREACHABLE.has(err.code)) return ExitCode.unreachable;
  return ExitCode.serverError;
}

/** The one stderr line for an error: `error: <message> (<code>)`. */
export function errorLine(err: unknown): string {
  if (err instanceof AppError) return `error: ${err.message} (${err.code})`;
  // Not ours: a bug. Say so rather than dress it up as a server fault.
  const msg = err instanceof Error ? err.message : String(err);
  return `error: internal error: ${msg}`;
}
