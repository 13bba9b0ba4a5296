/**
 * How the host pull of Rollouts and RemediationRules reaches the member's own store and
 * controllers: the same paths an operator's request takes (RolloutController.create,
 * the rule upsert), so every gate, budget and check applies to host objects too.
 */
import type { RemediationController } from '../controllers/remediation-controller.ts';
import type { RolloutController } from '../controllers/rollout-controller.ts';
import type { RolloutState } from '../rollout/types.ts';
import type { Store } from '../store/db.ts';
import { AppError } from '@nodekeeper/common';
import { validateRollout } from '../rollout/spec.ts';
import type { HostObjectDeps } from './object-sync.ts';

export function hostObjectDeps(store: Store, rollouts: RolloutController, remediation: RemediationController): HostObjectDeps {
  return {
    local: () => ({
      links: store.listHostObjects(),
      rollouts: new Set(store.listRollouts().map((r) => r.name)),
      rules: remediation.rules().filter((r) => r.source === 'applied').map((r) => ({ name: r.rule.name, fault: r.rule.fault })),
    }),
    links: () => store.listHostObjects(),
    rolloutState: (name) => (store.getRollout(name)?.state as RolloutState | undefined) ?? null,
    createRollout: (object) => void rollouts.create(object),
    // The operator's apply path: strategy, drain, allowDowngrade and paused may change;
    // packages, reboot and selector are refused with NK_ROLLOUT_FIELD_IMMUTABLE.
    updateRollout: (object) => {
      const r = validateRollout(object);
      if (!r.ok) throw new AppError('NK_ROLLOUT_INVALID', `invalid Rollout: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
      rollouts.applySpec(r.name, r.spec);
    },
    putRule: (object) => void remediation.applyRule(object),
    deleteRule: (name) => store.deleteRemediationRule(name),
    link: (link) => store.putHostObject(link),
    unlink: (kind, name) => store.deleteHostObject(kind, name),
    recordEvent: (object, type, reason, message) => store.recordEvent({ object, type, reason, message }),
  };
}
