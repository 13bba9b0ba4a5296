/**
 * Single-use nonces for re-enrollment by proof of the machine key. A nonce is bound to
 * the machine name it was asked for, lives a minute, and is taken (deleted) by the first
 * enrollment that presents it, whether that enrollment succeeds or not.
 *
 * Memory only and bounded: a coordinator restart forgets them (the agent asks again),
 * and a flood of requests evicts the oldest rather than growing without end.
 */
import { randomBytes } from 'node:crypto';

export const NONCE_TTL_MS = 60_000;
const MAX_NONCES = 20_000;

export class NonceBook {
  private readonly nonces = new Map<string, { machine: string; expiresAt: number }>();

  /** A fresh nonce for `machine`. Issued for any name: whether it is enrolled is not told. */
  issue(machine: string, now: number): string {
    if (this.nonces.size >= MAX_NONCES) {
      const oldest = this.nonces.keys().next();
      if (oldest.done !== true) this.nonces.delete(oldest.value);
    }
    const nonce = randomBytes(32).toString('base64url');
    this.nonces.set(nonce, { machine, expiresAt: now + NONCE_TTL_MS });
    return nonce;
  }

  /** Takes the nonce: true when it was issued for `machine` and has not expired. Single use. */
  take(nonce: string, machine: string, now: number): boolean {
    const e = this.nonces.get(nonce);
    if (e === undefined) return false;
    this.nonces.delete(nonce);
    return e.machine === machine && now < e.expiresAt;
  }
}
