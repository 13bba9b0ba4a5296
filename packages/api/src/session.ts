/**
 * The fleet page's sign-in session (docs/ui.md): what `POST /v1/sessions` answers when it
 * exchanges an API credential for the `nk_session` cookie, and `GET /v1/sessions/current`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { API_VERSION } from './version.ts';

export const Session = Type.Object({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.Literal('Session'),
  role: Type.Union([Type.Literal('admin'), Type.Literal('read-only')]),
  /** RFC 3339; the cookie's Max-Age ends then too. */
  expiresAt: Type.String(),
  /** Send as `X-Nodekeeper-CSRF` on every cookie-authenticated request that changes anything. */
  csrfToken: Type.String(),
});
export type Session = Static<typeof Session>;

/** The answer of a sign-out (metav1.Status). */
export const SignedOut = Type.Object({ apiVersion: Type.Literal(API_VERSION), kind: Type.Literal('Status'), status: Type.Literal('Success'), message: Type.String() });
export type SignedOut = Static<typeof SignedOut>;
