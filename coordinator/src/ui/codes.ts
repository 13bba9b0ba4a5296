/**
 * Error codes of the fleet page and its sign-in (docs/errors.md, "Fleet page"). The
 * session codes themselves (NK_AUTH_SESSION_INVALID, _EXPIRED) are the store's.
 */
export const UiErrorCode = {
  /** A cookie-authenticated request that changes something lacks the session's X-Nodekeeper-CSRF token, or carries another. */
  csrf: 'NK_AUTH_CSRF',
  /** A cookie-authenticated request (or a sign-in) from a page of another origin. */
  origin: 'NK_AUTH_ORIGIN',
  /** The Cookie header is too large, has too many cookies, names nk_session twice, or nk_session is not a session value. */
  cookieInvalid: 'NK_AUTH_COOKIE_INVALID',
  /** A sign-in with anything in the URL's query: credentials go in the Authorization header only. */
  credentialInUrl: 'NK_AUTH_CREDENTIAL_IN_URL',
  /** The operation needs a session (sign-in cookie), and the request was authenticated otherwise. */
  sessionRequired: 'NK_AUTH_SESSION_REQUIRED',
  /** The fleet page's files were not built (coordinator/ui/dist is missing). */
  notBuilt: 'NK_UI_NOT_BUILT',
} as const;
