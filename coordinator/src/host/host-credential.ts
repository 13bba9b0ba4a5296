/**
 * The member's registration with its host and the host credential it holds: adopted on
 * `nkctl host register`, rotated when 80 % of its lifetime has passed (or on request),
 * forgotten on unregister. Kept in one file on disk (registration.ts), so a restart
 * carries on with the credential it last saved.
 */
import type { Logger } from '@nodekeeper/common';
import { forgetRegistration, loadRegistration, requestMemberToken, rotationDue, saveRegistration, type HostRegistration } from './registration.ts';

export class HostCredential {
  #reg: HostRegistration | null;
  readonly #file: string;
  readonly #wallClock: () => number;
  readonly #log: Logger;

  constructor(file: string, wallClock: () => number, log: Logger) {
    this.#file = file;
    this.#wallClock = wallClock;
    this.#log = log;
    this.#reg = loadRegistration(file);
  }

  /** The registration in force, or null when not registered. */
  get current(): HostRegistration | null {
    return this.#reg;
  }

  /** Saves a new registration (replacing any earlier one) and holds it from now on. */
  async adopt(reg: HostRegistration): Promise<void> {
    await saveRegistration(this.#file, reg);
    this.#reg = reg;
  }

  /** Forgets the registration, on disk too. */
  forget(): void {
    forgetRegistration(this.#file);
    this.#reg = null;
  }

  /**
   * Asks the host for a new credential when the current one is due (or `force`), saves it
   * and holds it; true when it rotated (clients made with the old token must go).
   */
  async rotateIfDue(ttlSeconds: number, force = false): Promise<boolean> {
    const reg = this.#reg;
    if (reg === null) return false;
    if (!force && !rotationDue(reg, this.#wallClock())) return false;
    const { token, expires } = await requestMemberToken({ server: reg.server, caPem: reg.caPem, token: reg.token }, reg.cluster, ttlSeconds);
    const next = { ...reg, token, tokenExpires: expires, tokenIssued: new Date(this.#wallClock()).toISOString() };
    await saveRegistration(this.#file, next);
    this.#reg = next;
    this.#log.info({ expires }, 'host credential rotated');
    return true;
  }
}
