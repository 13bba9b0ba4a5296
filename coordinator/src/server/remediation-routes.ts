/**
 * Routes for remediation: the per-machine story, the switches (pause, resume, dry
 * run), and the rules. The contract is @nodekeeper/api (docs/api.md).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { API_VERSION, DryRunBody as DryRunSchema, type Remediation, type RemediationFleetStatus, type RemediationList } from '@nodekeeper/api';
import type { RemediationController } from '../controllers/remediation-controller.ts';
import type { RemediationRule } from '../remediation/rules.ts';
import type { Fault } from '../remediation/faults.ts';
import type { MachineRemediation, RemediationState } from '../remediation/types.ts';
import { apiMeta, checkPreconditions, readPreconditions, withoutServerFields } from '../api/object-meta.ts';
import type { ObjectMeta } from '../store/object-meta.ts';
import { NAME, httpError, listVersion, readJson, send, watchOf, type ApiDeps, type Route } from './http-util.ts';
import { parseListQuery } from '../watch/query.ts';
import { serveWatch } from '../watch/http-sink.ts';

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined || ms <= 0 ? null : new Date(ms).toISOString());
const DryRunBody = TypeCompiler.Compile(DryRunSchema);

/** The Remediation object of one machine. */
export function remediationObject(name: string, m: MachineRemediation | null, faults: readonly Fault[], paused: boolean, rules: ReadonlyMap<string, { ladder: ReadonlyArray<{ action: string }> }>): Remediation {
  const rule = m?.rule ?? null;
  return {
    kind: 'Remediation',
    machine: name,
    phase: m?.phase ?? 'Idle',
    reason: m?.reason ?? '',
    message: m?.message ?? '',
    since: iso(m?.since),
    rule,
    step: m === null || m.phase === 'Idle' ? null : m.step,
    action: m === null || rule === null || m.phase === 'Idle' ? null : rules.get(rule)?.ladder[m.step]?.action ?? null,
    commandId: m?.commandId ?? null,
    attempts: m?.attempts.length ?? 0,
    cooldownUntil: iso(m?.cooldownUntil),
    cordoned: m?.cordoned ?? false,
    paused,
    faults: faults.map((f) => ({ type: f.type, status: f.status, reason: f.reason, message: f.message, since: iso(f.since) })),
    history: (m?.history ?? []).map((h) => ({ ...h, at: iso(h.at) })),
  };
}

/** Whether the list serves a machine's Remediation: not Idle, with faults, or paused. */
const listed = (o: Remediation): boolean => o.phase !== 'Idle' || o.faults.length > 0 || o.paused;

/** The Remediation objects the list serves (and the watch): machines not Idle, with faults, or paused. */
export function remediationItems(deps: Pick<ApiDeps, 'fleet'>, remediation: RemediationController) {
  const rec = remediation.record();
  const rules = new Map(remediation.rules().map((r) => [r.rule.name, r.rule]));
  return deps.fleet.list()
    .map((m) => remediationObject(m.name, remediation.machineState(m.name), remediation.faults(m.name), rec.pausedMachines.includes(m.name), rules))
    .filter(listed);
}

/**
 * One machine's Remediation object as remediationItems() lists it, or null when the list
 * leaves it out (Idle, no faults, not paused) or there is no such machine: what the
 * watch hub rebuilds for a machine the controller or the fleet says moved.
 */
export function remediationItem(deps: Pick<ApiDeps, 'fleet'>, remediation: RemediationController, name: string): Remediation | null {
  if (deps.fleet.get(name) === undefined) return null;
  const m = remediation.machineState(name);
  const faults = remediation.faults(name);
  const paused = remediation.record().pausedMachines.includes(name);
  // The usual case, an idle machine: no rules read, no object built.
  if ((m === null || m.phase === 'Idle') && faults.length === 0 && !paused) return null;
  const o = remediationObject(name, m, faults, paused, new Map(remediation.rules().map((r) => [r.rule.name, r.rule])));
  return listed(o) ? o : null;
}

export function remediationRoutes(deps: ApiDeps, remediation: RemediationController): Route[] {
  const { fleet } = deps;
  const ruleMap = () => new Map(remediation.rules().map((r) => [r.rule.name, r.rule]));
  const statusObject = (): RemediationFleetStatus => {
    const rec = remediation.record();
    const state = rec.state as RemediationState | null;
    const storm = state?.storm;
    return {
      paused: rec.paused,
      dryRun: rec.dryRun,
      storm: { active: storm?.active ?? false, reason: storm?.reason ?? '', message: storm?.message ?? '', since: iso(storm?.since) },
      inFlight: Object.values(state?.machines ?? {}).filter((m) => m.phase === 'Running').length,
      maxConcurrent: remediation.settingsInForce().maxConcurrent,
    };
  };
  const one = (name: string) => {
    if (fleet.get(name) === undefined) throw httpError('NK_MACHINE_NOT_FOUND', `machine "${name}" not found`);
    return remediationObject(name, remediation.machineState(name), remediation.faults(name, true), remediation.record().pausedMachines.includes(name), ruleMap());
  };
  return [
    {
      method: 'GET', pattern: /^\/v1\/remediations$/, name: 'remediations', access: 'read-only',
      handler: ({ req, res, url }) => {
        const q = parseListQuery(url, 'none');
        if (q.watch) return serveWatch(watchOf(deps).hub, 'remediations', q, req, res);
        const resourceVersion = listVersion(deps);
        send(res, 200, { kind: 'RemediationList', metadata: { resourceVersion }, status: statusObject(), items: remediationItems(deps, remediation) } satisfies RemediationList);
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/remediations\/(pause|resume)$/, name: 'remediation-switch', access: 'admin',
      handler: ({ res, params }) => {
        remediation.setSwitch({ paused: params[0] === 'pause' });
        send(res, 200, statusObject());
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/remediations\/dry-run$/, name: 'remediation-dry-run', access: 'admin',
      handler: async ({ req, res }) => {
        const body = await readJson(req, DryRunBody);
        remediation.setSwitch({ dryRun: body.enabled });
        send(res, 200, statusObject());
      },
    },
    {
      method: 'GET', pattern: new RegExp(`^/v1/remediations/${NAME}$`), name: 'remediation', access: 'read-only',
      handler: ({ res, params }) => send(res, 200, one(params[0] ?? '')),
    },
    {
      method: 'POST', pattern: new RegExp(`^/v1/remediations/${NAME}/(pause|resume)$`), name: 'remediation-machine-switch', access: 'admin',
      handler: ({ res, params }) => {
        const name = params[0] ?? '';
        one(name);
        remediation.setSwitch({ machine: { name, paused: params[1] === 'pause' } });
        send(res, 200, one(name));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/remediationrules$/, name: 'remediation-rules', access: 'read-only',
      handler: ({ res }) => send(res, 200, {
        kind: 'RemediationRuleList',
        items: (() => {
          const metas = deps.store.objectMetas('remediationrule');
          return remediation.rules().map((r) => appliedRuleObject(r.object ?? toRuleObject(r.rule), r.source, r.source === 'applied' ? metas.get(r.rule.name) ?? null : null));
        })(),
      }),
    },
    {
      method: 'PUT', pattern: new RegExp(`^/v1/remediationrules/${NAME}$`), name: 'remediation-rule-apply', access: 'admin',
      handler: async ({ req, res, params }) => {
        const name = params[0] ?? '';
        const body = await readJson(req, null) as { metadata?: { name?: unknown } };
        if (body?.metadata?.name !== name) throw httpError('NK_REMEDIATION_RULE_INVALID', `metadata.name must be "${name}", the name in the URL`);
        const what = `remediation rule "${name}"`;
        const pre = readPreconditions(body, what);
        // Server-set fields are not part of what is stored or compared: the same rule read back and applied is unchanged.
        const object = withoutServerFields(body);
        // Nothing awaits from here to the write: the precondition holds for the write.
        const before = deps.store.objectMeta('remediationrule', name);
        checkPreconditions(pre, before, what);
        remediation.applyRule(object);
        send(res, before === null ? 201 : 200, appliedRuleObject(object, 'applied', deps.store.objectMeta('remediationrule', name)));
      },
    },
    {
      method: 'DELETE', pattern: new RegExp(`^/v1/remediationrules/${NAME}$`), name: 'remediation-rule-delete', access: 'admin',
      handler: ({ res, params }) => {
        const name = params[0] ?? '';
        deps.store.transaction(() => {
          deps.store.deleteRemediationRule(name);
          deps.store.recordEvent({ object: `remediationrule/${name}`, type: 'Normal', reason: 'Deleted', message: 'rule deleted; its fault falls back to the built-in default rule' });
        });
        send(res, 200, { name, deleted: true });
      },
    },
  ];
}

/** A rule as the API serves it: the object as applied, with its metadata and status. */
function appliedRuleObject(object: unknown, source: 'default' | 'applied', meta: ObjectMeta | null) {
  const o = (object ?? {}) as { metadata?: Record<string, unknown> };
  return {
    ...o,
    metadata: { ...o.metadata, ...(meta === null ? {} : apiMeta(meta)) },
    status: {
      source,
      observedGeneration: meta?.generation ?? 0,
      // An applied rule is validated whole before it is stored: it is in force (built-in defaults are not stored objects).
      conditions: meta === null ? [] : [{ type: 'Accepted', status: 'True', reason: 'Validated', message: '', lastTransitionTime: new Date(meta.createdAt).toISOString(), observedGeneration: meta.generation }],
    },
  };
}

/** A built-in rule as an API object. */
function toRuleObject(rule: RemediationRule) {
  const { name, ...spec } = rule;
  return { apiVersion: API_VERSION, kind: 'RemediationRule', metadata: { name }, spec };
}
