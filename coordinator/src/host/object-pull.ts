/**
 * Pulling Rollouts and RemediationRules authored on the host: which host objects to
 * apply to the member's own store, which to refuse and why, and what to do about host
 * objects that are gone. Pure; host/object-sync.ts does the I/O.
 *
 * As with ClusterPackageVersions (cpv-pull.ts), each host generation is judged once
 * (`status.observedGeneration` records it) and the member's store stays the source of
 * truth: a refused object changes nothing locally, and a local object the operator made
 * (no row in host_objects) is never taken over by a host object of the same name.
 */
import type { HostObjectLink } from '../store/host-objects.ts';
import { validateRule } from '../remediation/rules.ts';
import { validateRollout } from '../rollout/spec.ts';
import { canonicalJson } from './cluster-status.ts';
import { API_VERSION } from './names.ts';

export type HostKind = HostObjectLink['kind'];

/** A host object as listed: nothing in it is trusted (the CRD may be old, or lax). */
export interface HostObject {
  readonly metadata: { readonly name: string; readonly uid?: string; readonly generation?: number };
  readonly spec?: unknown;
  readonly status?: { readonly observedGeneration?: number; readonly [k: string]: unknown };
}

/** What the member holds now. */
export interface LocalObjects {
  /** Local objects made from host objects (the host_objects table). */
  readonly links: readonly HostObjectLink[];
  /** Names of every local rollout. */
  readonly rollouts: ReadonlySet<string>;
  /** Every applied local rule (host-made ones too) and the fault it handles. */
  readonly rules: ReadonlyArray<{ readonly name: string; readonly fault: string }>;
}

export type RefusalReason = 'Invalid' | 'NotAllowed' | 'Conflict';

interface Judged {
  readonly kind: HostKind;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
}

export type PullVerdict =
  /** Apply: `create` when the member has no such object, `update` when the host spec changed. */
  | (Judged & { readonly action: 'create' | 'update'; readonly object: { apiVersion: string; kind: HostKind; metadata: { name: string }; spec: unknown }; readonly spec: string })
  /** Accepted, and the member already holds this very spec: nothing to do but say so. */
  | (Judged & { readonly action: 'keep'; readonly spec: string })
  | (Judged & { readonly action: 'refuse'; readonly reason: RefusalReason; readonly message: string });

/** A host-made local object whose host object is gone. */
export interface Removal {
  readonly kind: HostKind;
  readonly name: string;
  /** Rules are removed; a rollout is left as it is (it may be running) and only unlinked. */
  readonly action: 'delete' | 'unlink';
}

/**
 * Bigger than any honest Rollout or rule (a rollout naming thousands of machines is
 * about 100 KiB); a host object past it is refused before it is parsed further.
 */
export const MAX_HOST_SPEC_BYTES = 256 * 1024;

/**
 * Verdicts for the host objects of one kind whose generation has not been judged yet, in
 * name order, and the removals for host-made objects no longer on the host. `objects`
 * must be the complete list of that kind in the member's namespace.
 */
export function judgeHostObjects(kind: HostKind, objects: readonly HostObject[], local: LocalObjects): { verdicts: PullVerdict[]; removals: Removal[] } {
  const sorted = [...objects].filter((o) => typeof o?.metadata?.name === 'string').sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const links = new Map(local.links.filter((l) => l.kind === kind).map((l) => [l.name, l]));
  // Faults claimed so far: every local rule, then accepted host rules in name order.
  const faults = new Map(local.rules.map((r) => [r.fault, r.name]));
  const verdicts: PullVerdict[] = [];
  for (const obj of sorted) {
    const generation = typeof obj.metadata.generation === 'number' ? obj.metadata.generation : 0;
    if (obj.status?.observedGeneration === generation) continue;
    const v = judge(kind, obj, generation, links, local, faults);
    if (v.action !== 'refuse' && kind === 'RemediationRule') faults.set((v as { fault?: string }).fault ?? '', v.name);
    verdicts.push(stripFault(v));
  }
  const present = new Set(sorted.map((o) => o.metadata.name));
  const removals: Removal[] = [...links.values()].filter((l) => !present.has(l.name)).map((l) => ({ kind, name: l.name, action: kind === 'RemediationRule' ? 'delete' : 'unlink' }));
  return { verdicts, removals };
}

function judge(kind: HostKind, obj: HostObject, generation: number, links: ReadonlyMap<string, HostObjectLink>, local: LocalObjects, faults: ReadonlyMap<string, string>): PullVerdict & { fault?: string } {
  const name = obj.metadata.name;
  const base: Judged = { kind, name, uid: typeof obj.metadata.uid === 'string' ? obj.metadata.uid : '', generation };
  const refuse = (reason: RefusalReason, message: string): PullVerdict => ({ ...base, action: 'refuse', reason, message: message.slice(0, 4000) });
  let spec: string;
  try {
    spec = canonicalJson(obj.spec ?? null);
  } catch (err) {
    return refuse('Invalid', `spec cannot be read: ${(err as Error).message}`);
  }
  if (spec.length > MAX_HOST_SPEC_BYTES) return refuse('Invalid', `spec is ${spec.length} bytes; at most ${MAX_HOST_SPEC_BYTES}`);
  const object = { apiVersion: API_VERSION, kind, metadata: { name }, spec: obj.spec };
  let fault: string | undefined;
  if (kind === 'Rollout') {
    const r = validateRollout(object);
    if (!r.ok) return refuse('Invalid', r.errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`).join('; '));
  } else {
    const r = validateRule(object);
    if (!r.ok) return refuse('Invalid', r.errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`).join('; '));
    fault = r.rule.fault;
  }
  const link = links.get(name);
  const exists = kind === 'Rollout' ? local.rollouts.has(name) : local.rules.some((r) => r.name === name);
  if (exists && link === undefined) return refuse('Conflict', `a local ${kind} "${name}" exists that was not made from the host; rename one of them`);
  if (fault !== undefined) {
    const holder = faults.get(fault);
    if (holder !== undefined && holder !== name) return refuse('Conflict', `rule "${holder}" already handles ${fault}`);
  }
  const action = !exists ? 'create' : link?.spec === spec ? 'keep' : 'update';
  return action === 'keep' ? { ...base, action, spec, ...(fault === undefined ? {} : { fault }) } : { ...base, action, object, spec, ...(fault === undefined ? {} : { fault }) };
}

function stripFault(v: PullVerdict & { fault?: string }): PullVerdict {
  const { fault: _fault, ...rest } = v;
  return rest as PullVerdict;
}
