/**
 * The headers every /ui/ answer carries, and the same-origin check on requests a
 * browser authenticates by cookie (docs/ui.md, "Security").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '@nodekeeper/common';
import { UiErrorCode } from './codes.ts';
import { sameOrigin } from './cookies.ts';

/** Nothing from elsewhere: no CDN, no inline script or style, no framing, no form posts out. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export const UI_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

export const isUiPath = (pathname: string): boolean => pathname === '/ui' || pathname.startsWith('/ui/');

export function setUiHeaders(res: ServerResponse): void {
  for (const [k, v] of Object.entries(UI_HEADERS)) res.setHeader(k, v);
}

/**
 * Refuses (NK_AUTH_ORIGIN) a request whose Origin header names another site. Browsers
 * send Origin on every cross-origin request and on same-origin ones that change
 * something; its absence (nkctl, curl, a same-origin GET) is no evidence of a cross-site one.
 */
export function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const scheme = 'encrypted' in req.socket && req.socket.encrypted === true ? 'https' : 'http';
  if (!sameOrigin(origin, req.headers.host, scheme)) {
    throw new AppError(UiErrorCode.origin, `requests signed in by cookie must come from the coordinator's own pages; Origin ${JSON.stringify(origin.slice(0, 100))} is another site`);
  }
}
