/**
 * Durations as kubectl reads and writes them. Input follows Go's time.ParseDuration
 * (https://pkg.go.dev/time#ParseDuration): `30m`, `1h`, `1h30m`, `1.5h`, `500ms`;
 * output follows kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration),
 * so `nkctl get` ages read like `kubectl get` ages.
 */
import { CliErrorCode, usageError } from './cli-errors.ts';

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu, as Go accepts both
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const UNITS = 'ns, us, ms, s, m, h';

/**
 * Milliseconds in a Go-style duration. Garbage throws an AppError (NK_CLI_BAD_DURATION)
 * whose message says what is wrong: empty, a number without a unit, an unknown unit
 * (with a hint for days and weeks, which Go does not have), or stray characters.
 */
export function parseDuration(input: string, flag = 'duration'): number {
  const bad = (why: string) => usageError(CliErrorCode.badDuration, `invalid ${flag} "${input}": ${why}`, { context: { input } });
  const s = input.trim();
  if (s === '') throw bad('empty duration (examples: 30m, 1h, 1h30m)');
  let i = 0;
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    sign = s[0] === '-' ? -1 : 1;
    i = 1;
  }
  if (s.slice(i) === '0') return 0; // Go's special case: a bare zero needs no unit.
  if (i === s.length) throw bad('a sign without a number');
  let total = 0;
  while (i < s.length) {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s.slice(i));
    const text = num?.[0] ?? '';
    if (text === '' || text === '.') throw bad(`expected a number at "${s.slice(i)}"`);
    i += text.length;
    const unit = /^[^\d.]+/.exec(s.slice(i))?.[0] ?? '';
    if (unit === '') throw bad(`missing unit after "${text}" (valid units: ${UNITS})`);
    const factor = UNIT_MS[unit];
    if (factor === undefined) {
      const hint = unit === 'd' ? '; use 24h for a day' : unit === 'w' ? '; use 168h for a week' : '';
      throw bad(`unknown unit "${unit}" (valid units: ${UNITS}${hint})`);
    }
    i += unit.length;
    total += Number(text) * factor;
  }
  if (!Number.isFinite(total)) throw bad('out of range');
  return sign * total;
}

/**
 * A duration as kubectl prints ages: `45s`, `3m12s` (under 10 minutes), `42m`,
 * `5h30m` (under 8 hours), `20h`, `3d4h` (under 8 days), `40d`, `2y30d`, `9y`.
 * Up to 2 seconds in the future counts as now (clock skew); beyond that `<invalid>`.
 */
export function humanDuration(ms: number): string {
  if (Number.isNaN(ms)) throw new RangeError('duration must be a number');
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return withRest(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return withRest(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return withRest(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return withRest(years, 'y', days % 365, 'd');
  return `${years}y`;
}

function withRest(major: number, majorUnit: string, minor: number, minorUnit: string): string {
  return minor === 0 ? `${major}${majorUnit}` : `${major}${majorUnit}${minor}${minorUnit}`;
}
