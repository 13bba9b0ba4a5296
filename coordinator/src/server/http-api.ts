/**
 * The HTTP API (JSON) for nkctl, agents' enrollment and artifact downloads, and
 * monitoring. The contract is @nodekeeper/api (docs/api.md): the routes are checked
 * against its path table at start, and `/openapi/v3` serves the document built from it. Every request body
 * is size-limited and validated at the edge; errors are `{code, message}` with a
 * fitting status; nothing is half-applied.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '@nodekeeper/common';
import { statusFor } from '@nodekeeper/api';
import { contractProblems } from './contract-check.ts';
import { httpError, requestUrl, send, type ApiDeps, type Principal, type Route, type RouteAccess } from './http-util.ts';
import { CSRF_HEADER, csrfMatches, readSessionCookie } from '../ui/cookies.ts';
import { UiErrorCode } from '../ui/codes.ts';
import { checkOrigin, isUiPath, setUiHeaders } from '../ui/page-headers.ts';
import { machineRoutes } from './machine-routes.ts';
import { credentialRoutes } from './credential-routes.ts';
import { checkDeclaredSize, packageRoutes } from './package-routes.ts';
import { openApiRoutes } from './openapi-routes.ts';
import { asUnavailable } from '../store/store-health.ts';
import { statusClass } from '../metrics.ts';

export type { ApiDeps } from './http-util.ts';

/** Methods that change nothing: no CSRF token needed. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface ApiHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /**
   * For `Expect: 100-continue`: refuses (and answers) a request whose route, credential
   * or declared size is wrong before its body is invited; else says 100 Continue and
   * handles it. Clients streaming a large body then never race a refusal.
   */
  checkContinue(req: IncomingMessage, res: ServerResponse): void;
  /** For an `Expect` other than 100-continue, which node would answer 417 with no body. */
  checkExpectation(req: IncomingMessage, res: ServerResponse): void;
}

/** Builds the request handler for every route but the agent WebSocket. */
export function createApi(deps: ApiDeps, extraRoutes: readonly Route[] = []): ApiHandler {
  const { store, metrics, log } = deps;
  const routes: Route[] = [...machineRoutes(deps), ...credentialRoutes(deps), ...packageRoutes(deps), ...openApiRoutes(), ...extraRoutes];
  const problems = contractProblems(routes);
  // A programming error, not a fault: the server would serve other than it documents.
  if (problems.length > 0) throw new TypeError(`the routes differ from the API contract:\n  ${problems.join('\n  ')}`);

  /**
   * Who may call: a bearer credential, or (for API routes, never agent routes) the
   * fleet page's session cookie. A cookie comes with the browser on its own, so a
   * request it authenticates must come from the coordinator's own origin, and one that
   * changes anything must also carry the session's CSRF token (docs/ui.md).
   */
  const authorize = (req: IncomingMessage, access: Exclude<RouteAccess, null>): Principal => {
    const h = req.headers.authorization;
    if (h === undefined && access !== 'agent') {
      const cookie = readSessionCookie(req.headers.cookie);
      if (cookie.kind === 'bad') throw httpError(UiErrorCode.cookieInvalid, `${cookie.why}; sign in again`);
      if (cookie.kind === 'session') return authorizeSession(req, access, cookie.value);
    }
    const m = typeof h === 'string' ? /^Bearer (\S{1,512})$/.exec(h) : null;
    if (m?.[1] === undefined) throw httpError('NK_AUTH_CREDENTIAL_MISSING', 'this endpoint needs a credential: Authorization: Bearer <credential>');
    if (access === 'agent' && m[1].startsWith('nkm.')) {
      store.authenticateMachine(m[1]);
      return { role: 'machine', via: 'bearer', session: null };
    }
    const cred = store.authenticateApi(m[1]);
    if (access === 'admin' && cred.role !== 'admin') throw httpError('NK_AUTH_FORBIDDEN', 'this endpoint needs an admin credential; yours is read-only');
    return { role: cred.role, via: 'bearer', session: null };
  };
  const authorizeSession = (req: IncomingMessage, access: Exclude<RouteAccess, null | 'agent'>, value: string): Principal => {
    checkOrigin(req);
    const session = store.authenticateSession(value);
    if (!SAFE_METHODS.has(req.method ?? '') && !csrfMatches(value, req.headers[CSRF_HEADER])) {
      throw httpError(UiErrorCode.csrf, `a request signed in by cookie that changes something needs the header X-Nodekeeper-CSRF with the session's token (from POST /v1/sessions or GET /v1/sessions/current)`);
    }
    if (access === 'admin' && session.role !== 'admin') throw httpError('NK_AUTH_FORBIDDEN', 'this endpoint needs an admin credential; you signed in with a read-only one');
    return { role: session.role, via: 'session', session: { value, expiresAt: session.expiresAt } };
  };

  const refuse = (res: ServerResponse, thrown: unknown) => {
    // A store that cannot read or write now is a 503 NK_STORE_UNAVAILABLE, not a 500.
    const err = asUnavailable(thrown);
    // `path`: the JSON path of the field refused, where the error names one (manifest rules).
    if (err instanceof AppError) send(res, statusFor(err.code), { code: err.code, message: err.message, ...(typeof err.context['path'] === 'string' ? { path: err.context['path'] } : {}) });
    else send(res, 500, { code: 'NK_INTERNAL', message: 'internal error; see the coordinator log' });
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = requestUrl(req);
    const candidates = url === null ? [] : routes.filter((r) => r.pattern.test(url.pathname));
    const route = candidates.find((r) => r.method === req.method);
    const name = route?.name ?? 'unmatched';
    const started = performance.now();
    res.on('finish', () => {
      metrics.apiRequests.inc({ route: name, status: String(res.statusCode) });
      metrics.apiDuration.observe({ route: name, status_class: statusClass(res.statusCode) }, (performance.now() - started) / 1000);
    });
    const run = deps.storeHealth === undefined ? <T>(fn: () => T) => fn() : <T>(fn: () => T) => deps.storeHealth!.run('api', fn);
    // Every answer under /ui/, errors included, carries the page's CSP and headers.
    if (url !== null && isUiPath(url.pathname)) setUiHeaders(res);
    void run(async () => {
      if (url === null) throw httpError('NK_HTTP_BAD_REQUEST', 'the request target is not a valid path');
      if (route === undefined) {
        throw candidates.length > 0
          ? httpError('NK_HTTP_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`)
          : httpError('NK_HTTP_NOT_FOUND', `no such endpoint: ${url.pathname}`);
      }
      const principal = route.access === null ? null : authorize(req, route.access);
      const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map((p) => decodeURIComponent(p));
      await route.handler({ req, res, params, url, principal });
    }).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Drain what the client still sends, so it reads our answer instead of a reset.
      req.resume();
      if (!(err instanceof AppError) && asUnavailable(err) === err) log.error({ err, route: name }, 'API request failed');
      refuse(res, err);
    });
  };
  handler.checkContinue = (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = requestUrl(req);
      const route = url === null ? undefined : routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
      if (route?.access != null) authorize(req, route.access);
      if (route?.name === 'artifact-push') checkDeclaredSize(req, deps.maxArtifactBytes);
    } catch (err) {
      res.shouldKeepAlive = false;
      refuse(res, err);
      return;
    }
    res.writeContinue();
    handler(req, res);
  };
  handler.checkExpectation = (req: IncomingMessage, res: ServerResponse) => {
    res.shouldKeepAlive = false;
    req.resume();
    refuse(res, httpError('NK_HTTP_EXPECTATION_FAILED', `Expect: ${String(req.headers.expect).slice(0, 64)} is not supported; only 100-continue is`));
  };
  return handler;
}
