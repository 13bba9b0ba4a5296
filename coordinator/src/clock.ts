/**
 * The coordinator's own clock. Liveness is judged on it alone (architecture invariant 8).
 * It is monotonic: a wall-clock step (NTP, an operator) cannot make a healthy fleet look
 * silent or a silent one look alive. Values are epoch-like milliseconds so they can be
 * shown and stored as times (whole milliseconds).
 */
import { performance } from 'node:perf_hooks';

export type Clock = () => number;

export const monotonicClock: Clock = () => Math.floor(performance.timeOrigin + performance.now());

/** RFC 3339 with exactly six fractional digits, as Kubernetes writes and parses MicroTime (Leases, Events). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
