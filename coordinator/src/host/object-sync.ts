/**
 * The I/O of pulling Rollouts and RemediationRules from the member's namespace on the
 * host (one step of the host sync): list, judge (object-pull.ts), apply through the
 * member's own controllers, remember which local objects came from the host, and write
 * each host object's status back (object-status.ts) only when it differs from what the
 * host holds, at most `maxStatusWrites` per sync.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import type { RolloutState } from '../rollout/types.ts';
import type { HostObjectLink } from '../store/host-objects.ts';
import { hostError, mergePatch, statusOf, type KubeClients } from './kube-client.ts';
import { memberNamespace } from './names.ts';
import { judgeHostObjects, type HostKind, type HostObject, type LocalObjects, type PullVerdict } from './object-pull.ts';
import { hostRolloutStatus, hostRuleStatus, sameStatus, type Acceptance, type HostCondition } from './object-status.ts';

/** What the member's store and controllers offer the pull. */
export interface HostObjectDeps {
  readonly local: () => LocalObjects;
  /** The host_objects rows (cheaper than local()). */
  readonly links: () => readonly HostObjectLink[];
  readonly rolloutState: (name: string) => RolloutState | null;
  /** RolloutController.create (throws AppError when the member refuses it). */
  readonly createRollout: (object: unknown) => void;
  /** A host-made rollout's spec changed: the operator's apply path (RolloutController.applySpec). */
  readonly updateRollout: (object: unknown) => void;
  /** The remediation controller's rule upsert. */
  readonly putRule: (object: unknown) => void;
  readonly deleteRule: (name: string) => void;
  readonly link: (link: HostObjectLink) => void;
  readonly unlink: (kind: HostKind, name: string) => void;
  readonly recordEvent: (object: string, type: 'Normal' | 'Warning', reason: string, message: string) => void;
}

const PLURAL = { Rollout: 'rollouts', RemediationRule: 'remediationrules' } as const;
const LOCAL_OBJECT = { Rollout: 'rollout', RemediationRule: 'remediationrule' } as const;

type Listed = HostObject & { readonly status?: { readonly observedGeneration?: number; readonly conditions?: Partial<HostCondition>[] } };

export class HostObjectSync {
  /** Kinds the host does not serve us (an older host install, an older member Role): said once. */
  private readonly unavailable = new Set<HostKind>();
  statusWrites = 0;
  private readonly deps: HostObjectDeps;
  private readonly log: Logger;
  private readonly wallClock: () => number;
  private readonly maxStatusWrites: number;

  constructor(deps: HostObjectDeps, log: Logger, wallClock: () => number, maxStatusWrites = 32) {
    this.deps = deps;
    this.log = log;
    this.wallClock = wallClock;
    this.maxStatusWrites = maxStatusWrites;
  }

  /** One pass over both kinds (rules first: a rollout never waits on a rule, but a rule may guard a rollout's machines). */
  async sync(c: KubeClients, cluster: string): Promise<void> {
    let budget = this.maxStatusWrites;
    for (const kind of ['RemediationRule', 'Rollout'] as const) budget = await this.syncKind(c, cluster, kind, budget);
  }

  private async syncKind(c: KubeClients, cluster: string, kind: HostKind, budget: number): Promise<number> {
    const ns = memberNamespace(cluster);
    const res = { ...c.crd(PLURAL[kind]), namespace: ns };
    let items: Listed[];
    try {
      items = ((await c.custom.listNamespacedCustomObject(res)) as { items?: Listed[] }).items ?? [];
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 403) {
        // No CRD on the host, or a Role from before this kind: the rest of the sync goes on.
        if (!this.unavailable.has(kind)) this.log.warn({ kind, status }, `host ${PLURAL[kind]} cannot be read; run "nkctl host install" and "nkctl host token create" on the host again to serve them`);
        this.unavailable.add(kind);
        return budget;
      }
      throw hostError(`list ${PLURAL[kind]} in ${ns}`, err);
    }
    this.unavailable.delete(kind);
    const { verdicts, removals } = judgeHostObjects(kind, items, this.deps.local());
    const judged = new Map<string, Acceptance>();
    for (const v of verdicts) judged.set(v.name, this.apply(v, ns));
    for (const r of removals) {
      if (r.action === 'delete') {
        try {
          this.deps.deleteRule(r.name);
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'NK_REMEDIATION_RULE_NOT_FOUND')) throw err;
        }
        this.deps.recordEvent(`${LOCAL_OBJECT[kind]}/${r.name}`, 'Normal', 'Deleted', `deleted on the host (${ns}); removed here too`);
      } else {
        this.log.info({ kind, name: r.name }, 'host object deleted; the local rollout is left as it is');
      }
      this.deps.unlink(kind, r.name);
    }
    const linked = new Set(this.deps.links().filter((l) => l.kind === kind).map((l) => l.name));
    // Every new verdict is written (its observedGeneration is new); it is what stops a re-judging.
    for (const v of verdicts) {
      const host = items.find((o) => o.metadata.name === v.name);
      await this.writeStatus(c, res, kind, v.name, v.generation, judged.get(v.name)!, host?.status, true, linked.has(v.name));
      budget -= 1;
    }
    // Progress of the host-made rollouts judged earlier: written when it changed.
    if (kind === 'Rollout') {
      for (const o of items) {
        if (budget <= 0) break;
        if (judged.has(o.metadata.name) || !linked.has(o.metadata.name) || typeof o.metadata.generation !== 'number') continue;
        // The verdict stands as the host holds it (a refused newer generation leaves the older rollout running).
        const prev = o.status?.conditions?.find((x) => x?.type === 'Accepted');
        const reason = prev?.reason === 'Invalid' || prev?.reason === 'NotAllowed' || prev?.reason === 'Conflict' ? prev.reason : 'Invalid';
        const acceptance: Acceptance = prev?.status === 'False' ? { accepted: false, reason, message: String(prev.message ?? '') } : { accepted: true, message: String(prev?.message ?? '') };
        if (await this.writeStatus(c, res, kind, o.metadata.name, o.metadata.generation, acceptance, o.status, false, true)) budget -= 1;
      }
    }
    return budget;
  }

  /** Applies one verdict locally; what it comes to (a local refusal turns into NotAllowed). */
  private apply(v: PullVerdict, ns: string): Acceptance {
    const what = `host ${v.kind} ${ns}/${v.name} generation ${v.generation}`;
    if (v.action === 'refuse') return this.refused(v.kind, what, v.reason, v.message);
    const link: HostObjectLink = { kind: v.kind, name: v.name, hostUid: v.uid, generation: v.generation, spec: v.spec };
    if (v.action === 'keep') {
      this.deps.link(link);
      return { accepted: true, message: 'the member holds this spec' };
    }
    // A crash between applying and linking must leave something the next pass applies
    // again: a create is linked first (a link without its object is created again; an
    // object without a link would look like the operator's own, a Conflict for good), an
    // update is linked after (the older spec in the link makes the next pass update again).
    const create = v.action === 'create';
    if (create) this.deps.link(link);
    try {
      if (v.kind === 'RemediationRule') this.deps.putRule(v.object);
      else if (create) this.deps.createRollout(v.object);
      else this.deps.updateRollout(v.object);
    } catch (err) {
      if (create) this.deps.unlink(v.kind, v.name);
      if (!(err instanceof AppError)) throw err;
      return this.refused(v.kind, what, 'NotAllowed', `${err.code}: ${err.message}`);
    }
    if (!create) this.deps.link(link);
    this.deps.recordEvent(`${LOCAL_OBJECT[v.kind]}/${v.name}`, 'Normal', 'HostObjectApplied', `${v.action === 'create' ? 'created' : 'updated'} from ${what}`);
    this.log.info({ kind: v.kind, name: v.name, generation: v.generation, action: v.action }, 'applied an object from the host');
    return { accepted: true, message: `${v.action === 'create' ? 'created' : 'updated'} on the member` };
  }

  private refused(kind: HostKind, what: string, reason: 'Invalid' | 'NotAllowed' | 'Conflict', message: string): Acceptance {
    this.deps.recordEvent('host/registration', 'Warning', 'HostObjectRefused', `${what}: ${reason}: ${message}`);
    this.log.warn({ kind, object: what, reason, message }, 'refused an object from the host');
    return { accepted: false, reason, message };
  }

  /** Writes the status when the host holds something else; true when it wrote. */
  private async writeStatus(c: KubeClients, res: { group: string; version: string; plural: string; namespace: string }, kind: HostKind, name: string, generation: number, acceptance: Acceptance, current: Listed['status'], judgedNow: boolean, linked: boolean): Promise<boolean> {
    const now = new Date(this.wallClock()).toISOString();
    const prev = current?.conditions;
    // A rollout's progress shows only when it is the host's (linked): never a local namesake's.
    const status: Record<string, unknown> = kind === 'Rollout'
      ? hostRolloutStatus(generation, acceptance, linked ? this.deps.rolloutState(name) : null, prev, now)
      : hostRuleStatus(generation, acceptance, prev, now);
    if (!judgedNow && sameStatus(current, status)) return false;
    await c.custom.patchNamespacedCustomObjectStatus({ ...res, name, body: { status } }, mergePatch).catch((err: unknown) => {
      throw hostError(`write ${kind} ${res.namespace}/${name} status`, err);
    });
    this.statusWrites += 1;
    return true;
  }
}
