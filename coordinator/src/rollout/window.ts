/**
 * Maintenance windows: when a rollout may start work. A window is wall-clock time in an
 * IANA time zone (`Europe/Berlin`, default `UTC`); a window whose end is earlier than
 * its start runs past midnight and belongs to the day it started on.
 *
 * Wall-clock time comes from Intl.DateTimeFormat (the ICU tz database Node ships), so
 * daylight saving time is handled by reading the local clock, not by adding offsets:
 * on a spring-forward night a 02:00-05:00 window opens at 03:00 (02:xx does not exist);
 * on a fall-back night it is open through both 02:xx hours.
 */
/** The days a window may name (spec.strategy.window.days). */
export const WINDOW_DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

/** A maintenance window as a validated spec holds it (rollout/spec.ts). */
export interface MaintenanceWindow {
  readonly days?: readonly (typeof WINDOW_DAYS)[number][];
  /** HH:MM, inclusive. */
  readonly start: string;
  /** HH:MM, exclusive; earlier than `start` means the window runs past midnight. */
  readonly end: string;
  /** IANA time zone, canonical spelling (`UTC`, `Europe/Berlin`). */
  readonly timeZone: string;
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

function minutes(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (m === null) throw new RangeError(`window time must be HH:MM, got "${hhmm}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** One formatter per zone: building one costs far more than using it. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock day (0 = Sunday) and minute of the day at `now` in `timeZone`. */
export function localTime(now: number, timeZone: string): { day: number; minute: number } {
  let weekday = '';
  let hour = 0;
  let minute = 0;
  for (const part of formatter(timeZone).formatToParts(now)) {
    if (part.type === 'weekday') weekday = part.value;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  const day = DAY_NAMES.indexOf(weekday as (typeof DAY_NAMES)[number]);
  if (day < 0) throw new RangeError(`unexpected weekday "${weekday}" from Intl for ${timeZone}`);
  return { day, minute: hour * 60 + minute };
}

/** True when `now` (ms since the epoch) falls inside the window; always true without one. */
export function windowOpen(window: MaintenanceWindow | undefined, now: number): boolean {
  if (window === undefined) return true;
  const { day, minute } = localTime(now, window.timeZone);
  const start = minutes(window.start);
  const end = minutes(window.end);
  const dayOk = (offset: number): boolean => {
    if (window.days === undefined) return true;
    const name = DAY_NAMES[(day + 7 + offset) % 7];
    return name !== undefined && window.days.includes(name);
  };
  if (start < end) return minute >= start && minute < end && dayOk(0);
  // Past midnight: the evening part is today's window, the morning part yesterday's.
  if (minute >= start) return dayOk(0);
  return minute < end && dayOk(-1);
}

/** A human description of the window, for waiting reasons. */
export function describeWindow(window: MaintenanceWindow): string {
  const days = window.days === undefined ? 'every day' : window.days.join(',');
  return `${days} ${window.start}-${window.end} ${window.timeZone}`;
}
