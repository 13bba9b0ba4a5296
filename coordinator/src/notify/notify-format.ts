/**
 * Which coordinator events page someone, and the bodies sent for them: Slack-compatible
 * (`{"text": ..., "blocks": [...]}`, also what Mattermost, Rocket.Chat and Teams'
 * Slack-compatible endpoints take) or plain JSON (the event record and the cluster).
 * Pure.
 */
import type { EventRecord } from '../model/records.ts';

export type NotifyFormat = 'slack' | 'json';

/** Rollout transitions that stop or undo a rollout (rollout/planner.ts, rollout-controller.ts). */
const ROLLOUT_STOPS = new Set([
  'Paused', 'PausedByOperator', 'Aborted', 'RolledBack', 'RolloutRolledBack', 'RollbackFailed', 'RollbackRequested',
  'CanaryFailed', 'FailureThreshold', 'SkewViolation', 'MachineSilent',
]);
/** About one machine, wherever recorded. */
const ANY_OBJECT = new Set(['NeedsHuman', 'LadderExhausted', 'RebootStarted', 'RebootSucceeded', 'RebootFailed']);

/** Whether an event is one to notify about: NeedsHuman, a rollout stopping, a reboot starting or ending. */
export function notifies(e: Pick<EventRecord, 'object' | 'reason'>): boolean {
  if (ANY_OBJECT.has(e.reason)) return true;
  return e.object.startsWith('rollout/') && ROLLOUT_STOPS.has(e.reason);
}

export interface NotifyContext {
  /** The member cluster's name (its host registration, or --notify-cluster-name). */
  readonly cluster: string;
  /** Notifications left out by the rate limit since the last one sent. */
  readonly suppressed: number;
}

/** The request body for one event. */
export function notificationBody(format: NotifyFormat, e: EventRecord, ctx: NotifyContext): Record<string, unknown> {
  const time = new Date(e.at).toISOString();
  const note = ctx.suppressed > 0 ? ` (${ctx.suppressed} earlier notification(s) left out by the rate limit)` : '';
  if (format === 'json') {
    return {
      cluster: ctx.cluster,
      event: { id: e.id, time, object: e.object, type: e.type, reason: e.reason, message: e.message },
      ...(ctx.suppressed > 0 ? { suppressed: ctx.suppressed } : {}),
    };
  }
  const icon = e.type === 'Warning' ? ':warning:' : ':information_source:';
  const text = `${icon} [${ctx.cluster}] ${e.object} ${e.reason}: ${e.message}${note}`;
  return {
    text: slackEscape(text),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: slackEscape(`${icon} *${e.reason}* on \`${e.object}\` (cluster \`${ctx.cluster}\`)\n${e.message}`).slice(0, 3000) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(`${e.type} at ${time}, event ${e.id}${note}`) }] },
    ],
  };
}

/** Slack treats &, < and > as control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
