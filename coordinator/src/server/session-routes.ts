/**
 * The fleet page's sign-in (docs/ui.md): an API credential, sent in the Authorization
 * header, exchanged for a session cookie; the session's CSRF token; sign-out.
 */
import { API_VERSION, type Session } from '@nodekeeper/api';
import { csrfToken, sessionCookie } from '../ui/cookies.ts';
import { UiErrorCode } from '../ui/codes.ts';
import { checkOrigin } from '../ui/page-headers.ts';
import { httpError, send, type ApiDeps, type Principal, type Route } from './http-util.ts';

const sessionObject = (role: Session['role'], expiresAt: number, value: string): Session =>
  ({ apiVersion: API_VERSION, kind: 'Session', role, expiresAt: new Date(expiresAt).toISOString(), csrfToken: csrfToken(value) });

const needSession = (p: Principal | null) => {
  if (p?.session == null) throw httpError(UiErrorCode.sessionRequired, 'this request is not signed in by a session cookie (POST /v1/sessions signs in)');
  return { ...p, session: p.session };
};

export function sessionRoutes(deps: ApiDeps, ttlMs: number): Route[] {
  const { store, log } = deps;
  return [
    {
      // access null: the credential is checked here, from the Authorization header only (never a cookie).
      method: 'POST', pattern: /^\/v1\/sessions$/, name: 'session-create', access: null,
      handler: ({ req, res, url }) => {
        // A credential in a URL ends up in logs, history and Referer headers: refuse, do not just ignore.
        if (url.search !== '') throw httpError(UiErrorCode.credentialInUrl, 'POST /v1/sessions takes no query: send the credential as Authorization: Bearer <credential>');
        checkOrigin(req);
        const h = req.headers.authorization;
        const m = typeof h === 'string' ? /^Bearer (\S{1,512})$/.exec(h) : null;
        if (m?.[1] === undefined) throw httpError('NK_AUTH_CREDENTIAL_MISSING', 'signing in needs an API credential: Authorization: Bearer <credential>');
        const credential = store.authenticateApi(m[1]);
        req.resume();
        const { session, record } = store.createSession(credential, ttlMs);
        log.info({ apiCredential: credential.id, role: credential.role }, 'fleet page session opened');
        res.setHeader('Set-Cookie', sessionCookie(session, ttlMs / 1000));
        send(res, 201, sessionObject(record.role, record.expiresAt, session));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/sessions\/current$/, name: 'session', access: 'read-only',
      handler: ({ res, principal }) => {
        const p = needSession(principal);
        send(res, 200, sessionObject(p.role === 'admin' ? 'admin' : 'read-only', p.session.expiresAt, p.session.value));
      },
    },
    {
      // Signing out changes something: authorize has checked the CSRF token.
      method: 'DELETE', pattern: /^\/v1\/sessions\/current$/, name: 'session-delete', access: 'read-only',
      handler: ({ res, principal }) => {
        const p = needSession(principal);
        store.deleteSession(p.session.value);
        res.setHeader('Set-Cookie', sessionCookie('', 0));
        send(res, 200, { apiVersion: API_VERSION, kind: 'Status', status: 'Success', message: 'signed out' });
      },
    },
  ];
}
