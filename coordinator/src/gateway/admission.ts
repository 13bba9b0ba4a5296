/**
 * Admission control on the agents' upgrade path. After a coordinator restart every
 * agent dials at once; accepting them all as fast as they come stalls the event loop,
 * handshakes and heartbeats time out, and agents redial: a storm that feeds itself.
 * So an upgrade is admitted only while
 *   - fewer than `maxPending` admitted connections are still between upgrade and welcome,
 *   - the rate of admissions stays under `perSecond` (a token bucket, burst one second), and
 *   - the event loop is keeping up: it was idle for more than a tenth of the last second
 *     (its utilization under `maxLoopUtilization`) and no callback held it longer than
 *     `maxLoopDelayMs`; while it lags, a trickle still gets in (a tenth of the rate), so a
 *     coordinator that stays busy never shuts the rest of its fleet out for good;
 * otherwise it is answered 503 NK_PROTO_TRY_AGAIN_LATER with a Retry-After sized to the
 * crowd at the door and the rate the coordinator is actually admitting at (agents add
 * their own jitter on top), so the fleet comes back at the rate the coordinator can take,
 * spread out rather than in waves. Sized to the configured rate instead, a coordinator
 * admitting a tenth of it told the crowd to come back ten times too soon: 66,000
 * refusals for 19,000 agents, each a TLS handshake and a credential check.
 *
 * Utilization, not lateness alone, says whether the loop keeps up: one 300 ms write
 * a second made a loop idle half the time look lagging, and a 19,000-agent storm was
 * readmitted at the trickle (100 a second) while half the CPU went unused.
 */
import { TokenBucket } from './rate-limit.ts';

export interface AdmissionOptions {
  readonly maxPending: number;
  readonly perSecond: number;
  /** A callback holding the loop longer than this (worst of the last second) is a stall. */
  readonly maxLoopDelayMs: number;
  /** The share of the last second the loop was busy beyond which it is saturated (0..1). */
  readonly maxLoopUtilization: number;
}

export const defaultAdmission: AdmissionOptions = Object.freeze({ maxPending: 500, perSecond: 1000, maxLoopDelayMs: 500, maxLoopUtilization: 0.9 });

/** Longest Retry-After given, in seconds (the agent waits between that and twice it). */
export const MAX_RETRY_AFTER_S = 30;

export type AdmissionVerdict =
  | { readonly admit: true }
  | { readonly admit: false; readonly reason: 'pending' | 'rate' | 'loop-delay'; readonly retryAfterS: number };

export interface AdmissionInput {
  readonly pending: number;
  readonly loopDelayMs: number;
  /** The share of the last full second the event loop was busy, 0..1. */
  readonly loopUtilization: number;
  /** Refused in the last few seconds: the crowd at the door. */
  readonly recentlyRefused: number;
  /** Admissions per second lately (UpgradeAdmission measures them); absent: the configured rate. */
  readonly admittedPerSecond?: number | undefined;
  /** Whether the bucket had a token (taken only when everything else allows). */
  readonly tokenAvailable: boolean;
  /** Whether the trickle bucket (a tenth of the rate) had a token, for a lagging loop. */
  readonly trickleAvailable?: boolean;
}

/**
 * The decision, pure. Retry-After spreads the refused crowd over the time the
 * coordinator needs to admit it at the rate it admits now (never taken below the
 * trickle nor above the configured rate): 1 s for the first, up to MAX_RETRY_AFTER_S.
 */
export function judgeUpgrade(input: AdmissionInput, opts: AdmissionOptions): AdmissionVerdict {
  const lagging = loopLags(input, opts) && input.trickleAvailable !== true;
  const reason = input.pending >= opts.maxPending ? 'pending' : lagging ? 'loop-delay' : !input.tokenAvailable ? 'rate' : null;
  if (reason === null) return { admit: true };
  const rate = Math.min(opts.perSecond, Math.max(trickleRate(opts.perSecond), input.admittedPerSecond ?? opts.perSecond));
  const retryAfterS = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil((input.pending + input.recentlyRefused) / rate)));
  return { admit: false, reason, retryAfterS };
}

/** Whether the loop is stalled or saturated: then only the trickle gets in. */
export function loopLags(input: Pick<AdmissionInput, 'loopDelayMs' | 'loopUtilization'>, opts: AdmissionOptions): boolean {
  return input.loopDelayMs > opts.maxLoopDelayMs || input.loopUtilization > opts.maxLoopUtilization;
}

/**
 * The longest Retry-After judgeUpgrade can give while `machines` agents reconnect, in
 * seconds. The crowd it counts is the pending connections (at most the fleet) plus the
 * refusals of the last 4 seconds; a refused agent waits at least its Retry-After (1 s or
 * more) before it dials again, so it is refused at most 4 times in that window: the crowd
 * never exceeds 5 machines per agent, and the rate it is divided by is never under the
 * trickle.
 */
export function retryAfterBoundS(machines: number, perSecond: number): number {
  return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil((5 * machines) / trickleRate(perSecond))));
}

/** What admission control lets in while the loop lags: a tenth of the rate, at least one a second. */
function trickleRate(perSecond: number): number {
  return Math.max(1, perSecond / 10);
}

/** How the event loop is doing, as admission control reads it. */
export interface LoopSignal {
  /** Worst delay over the last full second and the one running now, ms. */
  readonly delayMs: number;
  /** The share of the last full second the loop was busy, 0..1. */
  readonly utilization: number;
  stop(): void;
}

/**
 * Measures the event loop cheaply, every 100 ms: how late the timer fires (worst of the
 * last second) and how busy the loop was over the last full second.
 */
class LoopMonitor implements LoopSignal {
  private worst = 0;
  private current = 0;
  private last = performance.now();
  private ticks = 0;
  private busy = 0;
  private elu = performance.eventLoopUtilization();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now();
      this.current = Math.max(this.current, now - this.last - 100);
      this.last = now;
      if (++this.ticks % 10 === 0) {
        this.worst = this.current;
        this.current = 0;
        const elu = performance.eventLoopUtilization();
        this.busy = performance.eventLoopUtilization(elu, this.elu).utilization;
        this.elu = elu;
      }
    }, 100).unref();
  }

  /** Worst delay over the last full second and the one running now. */
  get delayMs(): number {
    return Math.max(this.worst, this.current, performance.now() - this.last - 100);
  }

  /** The share of the last full second the loop was busy. */
  get utilization(): number {
    return this.busy;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export class UpgradeAdmission {
  private readonly opts: AdmissionOptions;
  private readonly bucket: TokenBucket;
  private readonly trickle: TokenBucket;
  private readonly loop: LoopSignal;
  private pendingCount = 0;
  /** Refusals and admissions per second over the last 4 seconds, newest last. */
  private readonly refusals = new PerSecond(4);
  private readonly admissions = new PerSecond(4);

  /** `loop`: this process's event loop unless given (tests give a fixed one). */
  constructor(opts: AdmissionOptions, now: number, loop: LoopSignal = new LoopMonitor()) {
    this.opts = opts;
    this.loop = loop;
    this.bucket = new TokenBucket(opts.perSecond, opts.perSecond, now);
    const trickle = trickleRate(opts.perSecond);
    this.trickle = new TokenBucket(trickle, trickle, now);
  }

  get pending(): number {
    return this.pendingCount;
  }

  /**
   * The refusal of an upgrade whose credential is not checked yet, when the door is full
   * (`maxPending` admitted and not yet welcomed), counted as judge() counts it; null
   * otherwise, and then judge() decides once the credential is checked. In a storm most
   * dials find the door full: answered before the check, their refusals cost no store
   * read (83,000 of them at 40,000 agents). Nothing is taken for an unchecked caller.
   */
  refuseIfFull(now: number): AdmissionVerdict | null {
    if (this.pendingCount < this.opts.maxPending) return null;
    const verdict = judgeUpgrade({ ...this.inputs(now), tokenAvailable: true, trickleAvailable: true }, this.opts);
    if (verdict.admit) return null;
    this.refusals.add(now);
    return verdict;
  }

  /** Decides one upgrade; an admitted one counts as pending until `settled` is called. */
  judge(now: number): AdmissionVerdict {
    const base = this.inputs(now);
    // Tokens are taken only when nothing else refuses, so a refusal costs no capacity; the
    // trickle's (scarcer) token last, once the rate's was there.
    let verdict = judgeUpgrade({ ...base, tokenAvailable: true, trickleAvailable: true }, this.opts);
    if (verdict.admit && !this.bucket.take(now)) verdict = judgeUpgrade({ ...base, tokenAvailable: false, trickleAvailable: true }, this.opts);
    if (verdict.admit && loopLags(base, this.opts) && !this.trickle.take(now)) verdict = judgeUpgrade({ ...base, tokenAvailable: true, trickleAvailable: false }, this.opts);
    if (verdict.admit) {
      this.pendingCount += 1;
      this.admissions.add(now);
    } else {
      this.refusals.add(now);
    }
    return verdict;
  }

  private inputs(now: number) {
    return {
      pending: this.pendingCount,
      loopDelayMs: this.loop.delayMs,
      loopUtilization: this.loop.utilization,
      recentlyRefused: this.refusals.total(now),
      admittedPerSecond: this.admissions.rate(now),
    };
  }

  /** An admitted connection was welcomed, or closed before it was. */
  settled(): void {
    this.pendingCount = Math.max(0, this.pendingCount - 1);
  }

  stop(): void {
    this.loop.stop();
  }
}

/** Counts of the last few whole seconds, newest last. */
class PerSecond {
  private readonly counts: number[];
  private second = -Infinity;
  /** The second of the first count: at first a rate is over the seconds since, not the whole window. */
  private first = Infinity;

  constructor(seconds: number) {
    this.counts = new Array<number>(seconds).fill(0);
  }

  add(now: number): void {
    this.advance(now);
    this.first = Math.min(this.first, this.second);
    this.counts[this.counts.length - 1]! += 1;
  }

  total(now: number): number {
    this.advance(now);
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** Per second over the window (or the seconds since the first count); undefined before any. */
  rate(now: number): number | undefined {
    const total = this.total(now);
    return this.first === Infinity ? undefined : total / Math.min(this.counts.length, this.second - this.first + 1);
  }

  private advance(now: number): void {
    const second = Math.floor(now / 1000);
    if (second <= this.second) return;
    const shift = Math.min(this.counts.length, second - this.second);
    for (let i = 0; i < shift; i += 1) {
      this.counts.shift();
      this.counts.push(0);
    }
    this.second = second;
  }
}
