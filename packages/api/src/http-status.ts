/**
 * The HTTP status each error code of the API answers with (the codes themselves, with
 * their meanings, are the raising package's codes.ts catalogue and docs/errors.md);
 * codes not listed here follow the rule in statusFor.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = Object.freeze({
  NK_HTTP_BAD_REQUEST: 400,
  NK_HTTP_BODY_TOO_LARGE: 413,
  NK_HTTP_NOT_FOUND: 404,
  NK_HTTP_METHOD_NOT_ALLOWED: 405,
  NK_HTTP_EXPECTATION_FAILED: 417,
  // Gateway workers (coordinator/src/gateway/writer-proxy.ts).
  NK_GATEWAY_FORBIDDEN: 403,
  NK_GATEWAY_WRITER_UNAVAILABLE: 502,
  NK_AUTH_CREDENTIAL_MISSING: 401,
  NK_AUTH_CREDENTIAL_INVALID: 401,
  NK_AUTH_FORBIDDEN: 403,
  // The fleet page's sign-in (docs/ui.md).
  NK_AUTH_SESSION_INVALID: 401,
  NK_AUTH_SESSION_EXPIRED: 401,
  NK_AUTH_CSRF: 403,
  NK_AUTH_ORIGIN: 403,
  NK_AUTH_COOKIE_INVALID: 400,
  NK_AUTH_CREDENTIAL_IN_URL: 400,
  NK_AUTH_SESSION_REQUIRED: 400,
  NK_UI_NOT_BUILT: 503,
  NK_TOKEN_INVALID: 401,
  NK_TOKEN_EXPIRED: 401,
  NK_TOKEN_REVOKED: 401,
  NK_TOKEN_EXHAUSTED: 401,
  NK_MACHINE_REVOKED: 403,
  NK_MACHINE_ALREADY_ENROLLED: 409,
  NK_ENROLL_PROOF_INVALID: 401,
  NK_ENROLL_UNAUTHORISED: 401,
  NK_AUTH_CREDENTIAL_EXPIRED: 401,
  NK_AUTH_TOO_MANY_FAILURES: 429,
  NK_ARTIFACT_TOO_LARGE: 413,
  NK_ROLLOUT_EXISTS: 409,
  NK_ROLLOUT_BAD_TRANSITION: 409,
  // The host cluster failed or refused: a bad gateway, not this API's credential.
  NK_HOST_UNAUTHORIZED: 502,
  NK_HOST_FORBIDDEN: 502,
  NK_HOST_UNREACHABLE: 502,
  NK_HOST_API_ERROR: 502,
  NK_HOST_REJECTED: 502,
  NK_HOST_CONFLICT: 502,
  NK_HOST_NOT_FOUND: 502,
  NK_HOST_CA_MISMATCH: 502,
  NK_HOST_CA_DISCOVERY_FAILED: 502,
  NK_HOST_NOT_REGISTERED: 409,
  NK_MEMBER_NOT_CONFIGURED: 409,
  NK_MEMBER_UNREACHABLE: 502,
  NK_MEMBER_API_ERROR: 502,
  NK_DRAIN_BLOCKED: 409,
  NK_DRAIN_REFUSED: 409,
  NK_DRAIN_TIMEOUT: 409,
  NK_DRAIN_CANCELLED: 409,
  NK_API_CREDENTIAL_LAST_ADMIN: 409,
  NK_MACHINE_IN_USE: 409,
  NK_BACKUP_IN_PROGRESS: 409,
  // Objects (docs/declarative.md, "Objects"): optimistic concurrency, immutability, delete rules.
  NK_CONFLICT: 409,
  NK_ROLLOUT_FIELD_IMMUTABLE: 422,
  NK_ROLLOUT_NOT_FINISHED: 409,
  NK_ARTIFACT_IN_USE: 409,
  NK_BACKUP_FAILED: 503,
  NK_BACKUP_INTEGRITY_FAILED: 503,
  // Watch: a resume the coordinator no longer can serve; too many watchers.
  NK_WATCH_EXPIRED: 410,
  NK_WATCH_TOO_MANY: 429,
});

/** The status for an error code: the table, then store faults 503, *_NOT_FOUND 404, else 400. */
export function statusFor(code: string): number {
  return STATUS_BY_CODE[code] ?? (code.startsWith('NK_STORE_') ? 503 : code.endsWith('_NOT_FOUND') ? 404 : 400);
}
