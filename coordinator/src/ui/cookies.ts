/**
 * The session cookie and the CSRF token, as pure functions: parsing a hostile Cookie
 * header, the Set-Cookie line, and the token derived from the session.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'nk_session';
export const CSRF_HEADER = 'x-nodekeeper-csrf';
/** Browsers send at most ~4 KB per cookie; a header past this is not ours to parse. */
export const MAX_COOKIE_HEADER = 8192;
export const MAX_COOKIES = 64;
const VALUE_RE = /^[A-Za-z0-9._-]{1,128}$/;

export type CookieRead =
  | { readonly kind: 'none' }
  | { readonly kind: 'session'; readonly value: string }
  | { readonly kind: 'bad'; readonly why: string };

/**
 * The nk_session value in a Cookie header. Other cookies are not judged (other pages
 * on this host may set odd ones) beyond the size and count bounds. Two nk_session
 * cookies are refused rather than one picked: a sibling host tossing a cookie in must
 * not choose the session.
 */
export function readSessionCookie(header: string | undefined): CookieRead {
  if (header === undefined || header === '') return { kind: 'none' };
  if (header.length > MAX_COOKIE_HEADER) return { kind: 'bad', why: `the Cookie header is over ${MAX_COOKIE_HEADER} bytes` };
  const pairs = header.split(';');
  if (pairs.length > MAX_COOKIES) return { kind: 'bad', why: `the Cookie header has more than ${MAX_COOKIES} cookies` };
  const found: string[] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    found.push(pair.slice(eq + 1).trim());
  }
  if (found.length === 0) return { kind: 'none' };
  if (found.length > 1) return { kind: 'bad', why: `the Cookie header names ${SESSION_COOKIE} ${found.length} times` };
  const value = found[0] ?? '';
  if (!VALUE_RE.test(value)) return { kind: 'bad', why: `${SESSION_COOKIE} is not a session value` };
  return { kind: 'session', value };
}

/** The Set-Cookie line of a new session (maxAgeSeconds 0 clears it). */
export function sessionCookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

/**
 * The CSRF token of a session: derived from its secret, so nothing more is stored and
 * the page can ask for it again after a reload (GET /v1/sessions/current). A page of
 * another origin can read neither the cookie nor that answer.
 */
export function csrfToken(sessionValue: string): string {
  return createHash('sha256').update(`nodekeeper csrf\0${sessionValue}`).digest('base64url');
}

/** Constant-time comparison of a presented CSRF header with the session's token. */
export function csrfMatches(sessionValue: string, presented: string | string[] | undefined): boolean {
  if (typeof presented !== 'string' || presented.length > 256) return false;
  const want = Buffer.from(csrfToken(sessionValue));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Whether an Origin header names the coordinator itself: the scheme it serves and the
 * Host the request was sent to. `null` (sandboxed frames, some redirects) is not it.
 */
export function sameOrigin(origin: string, host: string | undefined, scheme: 'http' | 'https'): boolean {
  return host !== undefined && origin === `${scheme}://${host}`;
}
