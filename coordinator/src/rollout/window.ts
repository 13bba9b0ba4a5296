/**
 * Maintenance windows: when a rollout may start work. Times are UTC; a window whose end
 * is earlier than its start runs past midnight and belongs to the day it started on.
 */
import type { MaintenanceWindow } from './spec.ts';

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

function minutes(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (m === null) throw new RangeError(`window time must be HH:MM, got "${hhmm}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** True when `now` (ms since the epoch) falls inside the window; always true without one. */
export function windowOpen(window: MaintenanceWindow | undefined, now: number): boolean {
  if (window === undefined) return true;
  const d = new Date(now);
  const minute = d.getUTCHours() * 60 + d.getUTCMinutes();
  const start = minutes(window.start);
  const end = minutes(window.end);
  const dayOk = (offset: number): boolean => {
    if (window.days === undefined) return true;
    const day = DAY_NAMES[(d.getUTCDay() + 7 + offset) % 7];
    return day !== undefined && window.days.includes(day);
  };
  if (start < end) return minute >= start && minute < end && dayOk(0);
  // Past midnight: the evening part is today's window, the morning part yesterday's.
  if (minute >= start) return dayOk(0);
  return minute < end && dayOk(-1);
}

/** A human description of the window, for waiting reasons. */
export function describeWindow(window: MaintenanceWindow): string {
  const days = window.days === undefined ? 'every day' : window.days.join(',');
  return `${days} ${window.start}-${window.end} UTC`;
}
