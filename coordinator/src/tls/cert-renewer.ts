/**
 * Keeps the served certificate fresh without a restart. On a timer it asks for the
 * current TLS material (the generated PKI re-issues the serving certificate when less
 * than a third of its lifetime is left; operator files are re-read, so a certificate
 * rotated on disk by cert-manager or by hand is picked up), and when the certificate
 * changed, hands it to the server (`setSecureContext`): new handshakes get it, and
 * connections already open (agents) keep going on theirs.
 */
import { jittered, type Logger } from '@nodekeeper/common';
import type { TlsMaterial } from './pki.ts';

export interface CertRenewerDeps {
  /** The material to serve now (may re-issue or re-read). */
  readonly load: () => Promise<TlsMaterial>;
  /** Serves `m` to new connections. */
  readonly apply: (m: TlsMaterial) => void;
  readonly log: Logger;
  /** Told after each change (e.g. to record an event). */
  readonly renewed?: (m: TlsMaterial) => void;
}

/** How often to check: a twentieth of the lifetime, between 1 s and 1 h. */
export function renewalCheckIntervalMs(lifetimeMs: number): number {
  return Math.max(1000, Math.min(3_600_000, Math.floor(lifetimeMs / 20)));
}

export class CertRenewer {
  readonly #deps: CertRenewerDeps;
  readonly #intervalMs: number;
  #current: TlsMaterial;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(deps: CertRenewerDeps, current: TlsMaterial, intervalMs: number) {
    if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);
    this.#deps = deps;
    this.#current = current;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    if (this.#timer === null && !this.#stopped) this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** One check (exported for tests); never throws: a failure is logged and retried at the next check. */
  async check(): Promise<boolean> {
    try {
      const next = await this.#deps.load();
      if (this.#stopped || (next.certPem === this.#current.certPem && next.keyPem === this.#current.keyPem)) return false;
      this.#deps.apply(next);
      this.#current = next;
      this.#deps.log.info('serving certificate renewed in place');
      this.#deps.renewed?.(next);
      return true;
    } catch (err) {
      this.#deps.log.error({ err }, 'serving certificate renewal failed; the current one is kept and the next check retries');
      return false;
    }
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.check().finally(() => {
        if (!this.#stopped) this.#schedule();
      });
    }, jittered(this.#intervalMs, 0.1));
    this.#timer.unref();
  }
}
