/**
 * Routes for API credentials: create (the secret is shown once), list (never a secret),
 * revoke (refused from the next request on). Admin only: a read-only credential can
 * neither mint nor see credentials.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ApiCredentialCreateBody, type ApiCredentialCreated, type ApiCredentialList } from '@nodekeeper/api';
import { toApiCredentialObject } from '../api/credential-objects.ts';
import { readJson, send, type ApiDeps, type Route } from './http-util.ts';

const checkCreate = TypeCompiler.Compile(ApiCredentialCreateBody);

export function credentialRoutes(deps: ApiDeps): Route[] {
  const { store, log } = deps;
  return [
    {
      method: 'POST', pattern: /^\/v1\/apicredentials$/, name: 'apicredential-create', access: 'admin',
      handler: async ({ req, res }) => {
        const body = await readJson(req, checkCreate);
        const { credential, record } = store.createApiCredential({ role: body.role, description: body.description ?? '' });
        log.info({ apiCredential: record.id, role: record.role }, 'API credential created');
        send(res, 201, { ...toApiCredentialObject(record), credential } satisfies ApiCredentialCreated);
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/apicredentials$/, name: 'apicredentials', access: 'admin',
      handler: ({ res }) => send(res, 200, { kind: 'ApiCredentialList', items: store.listApiCredentials().map(toApiCredentialObject) } satisfies ApiCredentialList),
    },
    {
      method: 'DELETE', pattern: /^\/v1\/apicredentials\/([0-9a-f]{16})$/, name: 'apicredential-revoke', access: 'admin',
      handler: ({ res, params }) => {
        const record = store.revokeApiCredential(params[0] ?? '');
        log.warn({ apiCredential: record.id, role: record.role }, 'API credential revoked');
        send(res, 200, toApiCredentialObject(record));
      },
    },
  ];
}
