/**
 * `nkctl rollout describe NAME`, laid out like `kubectl describe`: the spec as the
 * operator wrote it (with the strategy spelled out), the status with its reason and
 * the command that continues it, every machine, and the rollout's events. Pure.
 */
import type { Event as EventObject, IntOrPercent, Rollout as RolloutObject } from '@nodekeeper/api';
import { block, eventsSection, timeAndAge, type Line } from './describe-machine.ts';
import { ageSince } from './machines-view.ts';
import { renderTable } from './table.ts';
import { countsText, packagesCell, progressBar, renderRolloutMachines } from './rollout-views.ts';

function amount(v: IntOrPercent | undefined, unit: string): string {
  if (v === undefined) return '<default>';
  return typeof v === 'number' ? `${v} ${unit}${v === 1 ? '' : 's'}` : `${v} of the machines`;
}

function canaryText(c: { count?: number; percent?: number } | undefined): string {
  if (c === undefined) return '<default>';
  if (c.percent !== undefined) return `${c.percent}% of the machines`;
  if (c.count === 0) return 'none';
  return amount(c.count, 'machine');
}

function soakText(s: number | undefined): string {
  if (s === undefined) return '<default>';
  if (s === 0) return 'none';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return [h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', sec > 0 ? `${sec}s` : ''].join('') + ' after each machine\'s install';
}

/** The whole description of a rollout, with its events (oldest first). */
export function describeRollout(r: RolloutObject, events: readonly EventObject[], now: number): string {
  const spec = r.spec;
  const st = spec.strategy;
  const sel = spec.selector;
  const selector = [
    ...Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(sel.names === undefined ? [] : [`names: ${sel.names.join(', ')}`]),
  ];
  const out: string[] = [];
  out.push(block([
    ['Name', r.metadata.name],
    ['Created', timeAndAge(r.metadata.creationTimestamp, now)],
    ['Packages', packagesCell(r).split(',').join('\n')],
    ['Selector', selector.length === 0 ? 'every machine' : selector.join('\n')],
    ['Allow Downgrade', String(spec.allowDowngrade === true)],
    ...(r.metadata.generation === undefined ? [] : [['Generation', String(r.metadata.generation)] as const]),
    ['Paused (spec)', String(spec.paused === true)],
  ], 0));
  const batches = st.batchSize !== undefined ? `${st.batchSize} machines at a time` : st.batches !== undefined ? st.batches.map((b) => `${b}%`).join(', ') : '<default>';
  const strategy: Line[] = [
    ['Canary', canaryText(st.canary)],
    ['Soak', soakText(st.soakSeconds)],
    ['Batches', batches],
    ['Max Unavailable', amount(st.maxUnavailable, 'machine')],
    ['Max Failures', `${amount(st.maxFailures, 'machine')}, then ${st.onFailure ?? '<default>'}`],
    ['Max Per Zone', st.maxPerZone === undefined ? 'no limit' : String(st.maxPerZone)],
  ];
  if (st.window !== undefined) strategy.push(['Window', JSON.stringify(st.window)]);
  out.push('Strategy:\n' + block(strategy, 2));
  const rb = spec.reboot;
  if (rb !== undefined && rb !== null) {
    out.push('Reboot:\n' + block([
      ['Only Required', String(rb.onlyRequired === true)],
      ['Blocking Pods', rb.blockingPods ?? 'none'],
      ['Prometheus', rb.prometheus === undefined || rb.prometheus === null ? 'none' : `${rb.prometheus.url}${rb.prometheus.alertFilter ? ` (ignoring ${rb.prometheus.alertFilter})` : ''}`],
      ['Drain', JSON.stringify(rb.drain ?? {})],
      ['Back Within', rb.timeoutSeconds === undefined ? '<default>' : `${rb.timeoutSeconds}s`],
    ], 2));
  }

  const s = r.status;
  if (s === undefined) {
    out.push('Status:  <none> (the coordinator has not picked it up yet)');
  } else {
    const lines: Line[] = [
      ['Phase', s.phase],
      ['Reason', s.reason],
      ['Message', s.message],
      ['Continue With', s.continueWith ?? ''],
      ['Batch', s.batch.total === 0 ? '' : s.batch.index === 0 ? `canaries (before batch 1 of ${s.batch.total})` : `${s.batch.index}/${s.batch.total}`],
      ['Progress', `${progressBar(s.counts.succeeded, s.counts.total)} ${countsText(s)}`],
      ['Started', timeAndAge(s.startedTime, now)],
      ['Completed', timeAndAge(s.completedTime, now)],
    ];
    out.push('Status:\n' + block(lines, 2));
    // As `kubectl describe deployment`: Progressing, Paused, Failed, Complete (rollout/conditions.ts).
    const conditions = s.conditions ?? [];
    if (conditions.length > 0) {
      out.push('Conditions:\n' + renderTable(
        ['Type', 'Status', 'Reason', 'Age', 'Message'],
        conditions.map((c) => [c.type, c.status, c.reason, ageSince(c.lastTransitionTime, now, '<unknown>'), c.message]),
        { describe: true, indent: 2 },
      ).replace(/\n$/, ''));
    }
    out.push(s.machines.length === 0 ? 'Machines:  <none>' : 'Machines:\n' + renderRolloutMachines(s.machines, now, 2).trimEnd());
  }
  out.push(eventsSection(events, now));
  return out.map((o) => o.replace(/\n$/, '')).join('\n') + '\n';
}
