/**
 * The page's calls to its coordinator: same origin, the session cookie sent by the
 * browser, the CSRF token on anything that changes something. The credential typed at
 * sign-in goes in one Authorization header and is kept nowhere.
 */
import type { Session } from '@nodekeeper/api';

/** What `POST /v1/sessions` and `GET /v1/sessions/current` answer (the contract's Session). */
export type { Session };

let csrf = '';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res: Response): Promise<ApiError> {
  let body: { code?: string; message?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON: the status says enough
  }
  return new ApiError(res.status, body.code ?? `HTTP_${res.status}`, body.message ?? res.statusText);
}

/** Signs in: the credential goes in the header of this one request. */
export async function signIn(credential: string): Promise<Session> {
  const res = await fetch('/v1/sessions', { method: 'POST', headers: { Authorization: `Bearer ${credential}` }, credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  const s = (await res.json()) as Session;
  csrf = s.csrfToken;
  return s;
}

/** The session the cookie holds, or null when signed out (401). */
export async function currentSession(): Promise<Session | null> {
  const res = await fetch('/v1/sessions/current', { credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401 || res.status === 400) return null;
  if (!res.ok) throw await failure(res);
  const s = (await res.json()) as Session;
  csrf = s.csrfToken;
  return s;
}

export async function signOut(): Promise<void> {
  await fetch('/v1/sessions/current', { method: 'DELETE', headers: { 'X-Nodekeeper-CSRF': csrf }, credentials: 'same-origin' });
  csrf = '';
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', ...(signal === undefined ? {} : { signal }) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** A request that changes something (admin actions): POST with the CSRF token. */
export async function post<T>(path: string): Promise<T> {
  const res = await fetch(path, { method: 'POST', headers: { 'X-Nodekeeper-CSRF': csrf }, credentials: 'same-origin' });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}
