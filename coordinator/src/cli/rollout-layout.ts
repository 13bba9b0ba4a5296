/**
 * The live view of `nkctl rollout status -w` on a terminal, fitted to it: a summary
 * (phase, batch, updated/total, soak remaining, stop reason), the machines that are
 * moving (in a step, failed, or waiting on something), and one line counting the rest.
 * Never taller than the rows given nor wider than the columns (a wrapped or scrolled
 * block cannot be redrawn in place), whatever the fleet's size. Pure.
 */
import { ageSince } from './machines-view.ts';
import type { RolloutMachineStatus, RolloutObject } from './rollout-objects.ts';
import { countsText, packagesCell, progressBar } from './rollout-views.ts';
import { renderTable } from './table.ts';

/** Machine phases shown one by one, in this order: the ones someone may need to look at first. */
const MOVING_ORDER: readonly string[] = ['Failed', 'RollingBack', 'Installing', 'Soaking', 'Waiting'];

/** A machine that is moving: in a step, failed, or waiting with a reason (held, draining). */
export function isMoving(m: RolloutMachineStatus): boolean {
  if (m.phase === 'Waiting') return m.reason !== '' || m.message !== '';
  return MOVING_ORDER.includes(m.phase);
}

const thousands = (n: number) => n.toLocaleString('en-US');

/** Seconds of soak left on the machine soaking longest, or null when none soaks. */
export function soakRemaining(r: RolloutObject, now: number): number | null {
  const soak = (r.spec.strategy as { soakSeconds?: number } | undefined)?.soakSeconds;
  if (soak === undefined) return null;
  let left: number | null = null;
  for (const m of r.status?.machines ?? []) {
    if (m.phase !== 'Soaking' || m.since === null) continue;
    const t = Math.max(0, Math.ceil(soak - (now - Date.parse(m.since)) / 1000));
    left = left === null ? t : Math.min(left, t);
  }
  return left;
}

function summary(r: RolloutObject, now: number): string[] {
  const s = r.status;
  if (s === undefined) return [`rollout/${r.metadata.name}: Pending (no status yet)`];
  const batch = s.batch.total === 0 ? '' : s.batch.index === 0 ? ', canary' : `, batch ${s.batch.index}/${s.batch.total}`;
  const lines = [
    `rollout/${r.metadata.name}: ${s.phase}${batch}  ${packagesCell(r)}`,
    `Updated:   ${progressBar(s.counts.succeeded, s.counts.total, 20)} ${countsText(s)}`,
  ];
  const soak = soakRemaining(r, now);
  if (soak !== null) lines.push(`Soak:      ${soak}s left`);
  if (s.reason !== '' || s.message !== '') lines.push(`Reason:    ${[s.reason, s.message].filter((x) => x !== '').join(': ')}`);
  return lines;
}

/** The machines that are not shown one by one, as one line. */
function restLine(hiddenMoving: number, rest: readonly RolloutMachineStatus[], afterTable: boolean): string {
  const done = rest.filter((m) => m.phase === 'Succeeded' || m.phase === 'RolledBack' || m.phase === 'Skipped').length;
  const parts = [
    hiddenMoving > 0 ? `${thousands(hiddenMoving)} ${afterTable ? 'more ' : ''}moving` : '',
    rest.length > 0 ? `${thousands(rest.length)} machines done/waiting (${thousands(done)} done, ${thousands(rest.length - done)} waiting)` : '',
  ].filter((p) => p !== '');
  return `${afterTable ? 'and ' : ''}${parts.join(', ')}`;
}

/**
 * The view as lines: at most `rows` (at least 1), each at most `columns` characters.
 * Every moving machine is listed when the summary, a header, the moving machines and
 * the line counting the rest fit in `rows`; else as many as fit, the rest counted.
 */
export function layoutRolloutStatus(r: RolloutObject, now: number, rows: number, columns: number): string[] {
  if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError(`columns must be a positive integer, got ${columns}`);
  const clip = (line: string) => (line.length > columns ? `${line.slice(0, Math.max(0, columns - 1))}…`.slice(0, columns) : line);
  const head = summary(r, now).slice(0, rows);
  const machines = r.status?.machines ?? [];
  const moving = machines.filter(isMoving).sort((a, b) => MOVING_ORDER.indexOf(a.phase) - MOVING_ORDER.indexOf(b.phase) || a.name.localeCompare(b.name));
  const rest = machines.filter((m) => !isMoving(m));
  let room = rows - head.length;
  const out = [...head];
  if (moving.length > 0 && room >= 2) {
    // Room for the header and k machines, and a line for whatever is left out.
    const fitsAll = moving.length + 1 + (rest.length > 0 ? 1 : 0) <= room;
    const k = fitsAll ? moving.length : Math.max(0, room - 2);
    if (k > 0) {
      const shown = moving.slice(0, k);
      const table = renderTable(
        ['MACHINE', 'PHASE', 'PACKAGE', 'STEP', 'SINCE', 'MESSAGE'],
        shown.map((m) => [m.name, m.phase, m.package, m.step ?? '-', ageSince(m.since, now, '-'), m.reason === '' ? m.message : m.message === '' ? m.reason : `${m.reason}: ${m.message}`]),
      ).split('\n').filter((l) => l !== '');
      out.push(...table);
      room -= table.length;
      if (moving.length - k + rest.length > 0 && room >= 1) out.push(restLine(moving.length - k, rest, true));
      return out.map(clip);
    }
  }
  if (machines.length > 0 && room >= 1) out.push(restLine(moving.length, rest, false));
  return out.map(clip);
}
