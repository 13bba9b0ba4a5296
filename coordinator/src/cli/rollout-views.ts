/**
 * How rollouts read in a terminal: the list, the status block (phase, batch, a
 * progress bar, per-machine phases), the one-line summary `status -w` appends when
 * stdout is not a terminal, and what is printed when a rollout stops. Pure.
 */
import { ageSince } from './machines-view.ts';
import type { RolloutMachineStatus, Rollout as RolloutObject, RolloutStatus } from '@nodekeeper/api';
import { renderTable } from './table.ts';

const BAR_WIDTH = 30;

/** `[#########---------------------]` for done of total. */
export function progressBar(done: number, total: number, width = BAR_WIDTH): string {
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`bar width must be a positive integer, got ${width}`);
  const filled = total <= 0 ? 0 : Math.min(width, Math.floor((Math.max(0, done) / total) * width));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** `kubelet=1.31.3,containerd=1.7.22` */
export function packagesCell(r: RolloutObject): string {
  if (r.spec.reboot !== undefined && r.spec.reboot !== null) return 'reboot';
  return (r.spec.packages ?? []).map((p) => `${p.package}=${p.version}`).join(',');
}

function progressCell(s: RolloutStatus | undefined): string {
  return s === undefined ? '-' : `${s.counts.succeeded}/${s.counts.total}`;
}

/** NAME PHASE PACKAGES PROGRESS AGE */
export function renderRollouts(items: readonly RolloutObject[], now: number): string {
  return renderTable(
    ['NAME', 'PHASE', 'PACKAGES', 'PROGRESS', 'AGE'],
    items.map((r) => [r.metadata.name, r.status?.phase ?? 'Pending', packagesCell(r), progressCell(r.status), ageSince(r.metadata.creationTimestamp, now, '<unknown>')]),
  );
}

function batchText(s: RolloutStatus): string {
  // Index 0 is the canary stage, before the first batch.
  return s.batch.total === 0 || s.batch.index === 0 ? '' : `, batch ${s.batch.index}/${s.batch.total}`;
}

/** `4/10 succeeded (1 in progress, 0 failed, 5 waiting)`, naming only what is non-zero beyond the first three. */
export function countsText(s: RolloutStatus): string {
  const c = s.counts;
  const extra = [
    c.rollingBack > 0 ? `${c.rollingBack} rolling back` : '',
    c.rolledBack > 0 ? `${c.rolledBack} rolled back` : '',
    c.skipped > 0 ? `${c.skipped} skipped` : '',
  ].filter((e) => e !== '');
  return `${c.succeeded}/${c.total} succeeded (${[`${c.inProgress} in progress`, `${c.failed} failed`, `${c.waiting} waiting`, ...extra].join(', ')})`;
}

/** The machines table of a status or describe. */
export function renderRolloutMachines(machines: readonly RolloutMachineStatus[], now: number, indent = 0): string {
  return renderTable(
    ['MACHINE', 'PHASE', 'PACKAGE', 'FROM', 'TO', 'STEP', 'SINCE', 'MESSAGE'],
    machines.map((m) => [
      m.name,
      m.phase,
      m.package ?? '-',
      m.fromVersion ?? '<unknown>',
      m.toVersion ?? '-',
      m.step ?? '-',
      ageSince(m.since, now, '-'),
      m.reason === '' ? m.message : m.message === '' ? m.reason : `${m.reason}: ${m.message}`,
    ]),
    { indent },
  );
}

/** The block `rollout status` prints (and redraws with -w on a terminal). */
export function renderStatus(r: RolloutObject, now: number): string {
  const s = r.status;
  if (s === undefined) return `rollout/${r.metadata.name}: Pending (no status yet)\n`;
  const lines = [
    `rollout/${r.metadata.name}: ${s.phase}${batchText(s)}`,
    `Packages:  ${packagesCell(r)}`,
    `Progress:  ${progressBar(s.counts.succeeded, s.counts.total)} ${countsText(s)}`,
  ];
  if (s.reason !== '' || s.message !== '') lines.push(`Reason:    ${[s.reason, s.message].filter((x) => x !== '').join(': ')}`);
  const table = s.machines.length === 0 ? 'No machines selected.\n' : renderRolloutMachines(s.machines, now);
  return lines.join('\n') + '\n' + table;
}

/** The line `status -w` appends on each change when stdout is not a terminal. */
export function summaryLine(r: RolloutObject): string {
  const s = r.status;
  if (s === undefined) return `rollout/${r.metadata.name}: Pending\n`;
  return `rollout/${r.metadata.name}: ${s.phase}${batchText(s)} ${progressBar(s.counts.succeeded, s.counts.total, 20)} ${countsText(s)}\n`;
}

/** Lines for machines whose phase or step changed since `before` (`  node-3: Installing -> Soaking`). */
export function machineChanges(before: RolloutObject | null, after: RolloutObject): string {
  const old = new Map((before?.status?.machines ?? []).map((m) => [`${m.name}/${m.package}`, m]));
  let out = '';
  for (const m of after.status?.machines ?? []) {
    const prev = old.get(`${m.name}/${m.package}`);
    if (prev !== undefined && prev.phase === m.phase && prev.step === m.step) continue;
    const from = prev === undefined ? '' : `${prev.phase} -> `;
    const step = m.step !== null && m.step !== '' ? ` (step ${m.step})` : '';
    const why = m.phase === 'Failed' || m.phase === 'RollingBack' || m.phase === 'Skipped' ? [m.reason, m.message].filter((x) => x !== '').join(': ') : '';
    out += `  ${m.name} ${m.package}: ${from}${m.phase}${step}${why === '' ? '' : `: ${why}`}\n`;
  }
  return out;
}

/** What is printed when a rollout stops (or is found stopped): why, and the command that continues it. */
export function renderStop(r: RolloutObject): string {
  const s = r.status;
  if (s === undefined) return '';
  // `RolledBack: RolledBack: ...` says nothing twice.
  const why = [s.reason === s.phase ? '' : s.reason, s.message].filter((x) => x !== '').join(': ');
  const head = `Rollout ${r.metadata.name} ${s.phase}${why === '' ? '' : `: ${why}`}\n`;
  const next = s.continueWith === null || s.continueWith === ''
    ? (s.phase === 'Completed' ? '' : 'Nothing continues it: create a new rollout to try again.\n')
    : `To continue: ${s.continueWith}\n`;
  return head + next;
}
