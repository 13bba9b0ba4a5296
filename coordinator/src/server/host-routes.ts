/**
 * Routes for the host cluster registration (pull mode): its state, register,
 * unregister, and sync now.
 */
import { HostRegisterBody, HostUnregisterBody, type HostRegistration } from '@nodekeeper/api';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { HostSync } from '../host/host-sync.ts';
import { readJson, send, type ApiDeps, type Route } from './http-util.ts';

const RegisterBody = TypeCompiler.Compile(HostRegisterBody);
const UnregisterBody = TypeCompiler.Compile(HostUnregisterBody);

export function hostRoutes(deps: ApiDeps, host: HostSync, tokenTtlSeconds: number): Route[] {
  const state = (): HostRegistration => ({ kind: 'HostRegistration', ...host.state() });
  return [
    { method: 'GET', pattern: /^\/v1\/host$/, name: 'host', access: 'read-only', handler: ({ res }) => send(res, 200, state()) },
    {
      method: 'POST', pattern: /^\/v1\/host\/register$/, name: 'host-register', access: 'admin',
      handler: async ({ req, res }) => {
        const body = await readJson(req, RegisterBody);
        await host.register({
          cluster: body.cluster, server: body.server, caPem: body.caPem ?? null, caHash: body.caHash, bootstrapToken: body.token,
          tokenTtlSeconds, provider: body.provider ?? null, region: body.region ?? null, zone: body.zone ?? null, now: Date.now(),
        });
        send(res, 200, state());
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/host\/unregister$/, name: 'host-unregister', access: 'admin',
      handler: async ({ req, res }) => {
        const body = await readJson(req, UnregisterBody);
        const removed = await host.unregister(body.localOnly === true);
        deps.log.info({ removed }, 'unregistered from the host cluster');
        send(res, 200, { ...state(), removed });
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/host\/rotate$/, name: 'host-rotate', access: 'admin',
      handler: async ({ res }) => send(res, 200, { ...(await host.rotateNow()), kind: 'HostRegistration' } satisfies HostRegistration),
    },
    {
      method: 'POST', pattern: /^\/v1\/host\/sync$/, name: 'host-sync', access: 'admin',
      handler: async ({ res }) => {
        await host.syncNow();
        send(res, 200, state());
      },
    },
  ];
}
