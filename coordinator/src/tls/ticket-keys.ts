/**
 * TLS session ticket keys that outlive the process, so a restarted coordinator resumes
 * the sessions of the agents that reconnect to it (a resumed TLS 1.3 handshake skips the
 * certificate signature and verification; in a reconnect storm of thousands of agents
 * that is most of the handshake CPU).
 *
 * The keys live in `<data-dir>/pki/ticket-keys` (mode 0600, written durably: temp file,
 * fsync, rename, fsync of the directory), 112 bytes:
 *   magic "NKTKEYS1" | rotatedAt (uint64 BE, ms since the epoch) | current key (48) | previous key (48, zeros: none)
 * A key is Node's 48-byte ticket key: name (16) | HMAC secret (16) | AES secret (16).
 *
 * Rotation: every `--tls-ticket-rotation` seconds (default 12 h) a fresh key becomes the
 * current one and the current one becomes the previous; the one before is dropped, so a
 * ticket is honoured for at most two rotation intervals (the session lifetime is set to
 * that, see ticketLifetimeSeconds). A restart keeps both keys and the rotation time.
 *
 * Why a ticket-key callback: Node's documented `setTicketKeys` takes one key, and a
 * ticket sealed by any other key name is discarded (full handshake). So tickets issued
 * just before a rotation would all be lost at it. Node's SecureContext has the hook its
 * own tests use (test-https-resume-after-renew.js): `enableTicketKeyCallback()` and
 * `onticketkeycallback(name, iv, enc)`, which returns [1, hmac, aes, name, iv] to seal,
 * and [1 | 2, hmac, aes] to open (2: accepted, re-issue the ticket under the current key,
 * RFC 5077's renewal) or [0, ...] (unknown: full handshake). We seal with the current
 * key and open with the current or the previous one. The hook is not a documented API:
 * when it is missing (a future Node), we fall back to `setTicketKeys(current)` alone
 * (restarts still resume; tickets from before a rotation do not), log it, and
 * test/tls-resumption.test.ts fails so the upgrade is noticed. The alternatives were
 * worse: stateful session IDs (newSession/resumeSession) would need every session's
 * master secret on disk to survive a restart, and an "overlap" with a single key cannot
 * open a ticket sealed by another key at all.
 *
 * A file that is not ours (not a regular file, another owner, readable by group or
 * others, wrong size or magic, a rotation time in the future) is refused with
 * NK_TLS_TICKET_KEYS_REFUSED, never used (its keys may be known to someone else), and
 * replaced by fresh keys: sessions then do one full handshake, nothing else is lost.
 */
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import { AppError, writeFileDurable, type Logger } from '@nodekeeper/common';

export const KEY_BYTES = 48;
const MAGIC = Buffer.from('NKTKEYS1', 'latin1');
export const TICKET_FILE_BYTES = MAGIC.length + 8 + 2 * KEY_BYTES;
/** TLS 1.3 caps a ticket's lifetime at 7 days (RFC 8446 4.6.1); a ticket lives two rotations. */
export const MAX_ROTATION_MS = 3.5 * 86_400_000;
export const DEFAULT_ROTATION_MS = 12 * 3_600_000;

export interface TicketKeySet {
  /** When `current` became current (ms since the epoch). */
  readonly rotatedAt: number;
  readonly current: Buffer;
  readonly previous: Buffer | null;
}

/** What lstat/fstat says about the file, and who we are. */
export interface FileFacts {
  readonly regular: boolean;
  readonly uid: number;
  readonly mode: number;
  readonly size: number;
  readonly ourUid: number;
}

export function encodeTicketKeys(s: TicketKeySet): Buffer {
  const out = Buffer.alloc(TICKET_FILE_BYTES);
  MAGIC.copy(out, 0);
  out.writeBigUInt64BE(BigInt(s.rotatedAt), MAGIC.length);
  s.current.copy(out, MAGIC.length + 8);
  s.previous?.copy(out, MAGIC.length + 8 + KEY_BYTES);
  return out;
}

/** The key set in `data`, or why the file must not be used. */
export function decodeTicketKeys(data: Buffer, facts: FileFacts, now: number, rotationMs: number): TicketKeySet | { problem: string } {
  if (!facts.regular) return { problem: 'not a regular file' };
  if (facts.uid !== facts.ourUid) return { problem: `owned by uid ${facts.uid}, not the coordinator's uid ${facts.ourUid}` };
  if ((facts.mode & 0o077) !== 0) return { problem: `mode 0${(facts.mode & 0o777).toString(8)}: readable or writable by others than its owner` };
  if (facts.size !== TICKET_FILE_BYTES || data.length !== TICKET_FILE_BYTES) return { problem: `${data.length} bytes, not ${TICKET_FILE_BYTES}` };
  if (!data.subarray(0, MAGIC.length).equals(MAGIC)) return { problem: 'not a nodekeeper ticket key file (bad magic)' };
  const rotatedAt = Number(data.readBigUInt64BE(MAGIC.length));
  if (rotatedAt > now + rotationMs) return { problem: `rotation time ${new Date(rotatedAt).toISOString()} is in the future` };
  const current = Buffer.from(data.subarray(MAGIC.length + 8, MAGIC.length + 8 + KEY_BYTES));
  const prev = Buffer.from(data.subarray(MAGIC.length + 8 + KEY_BYTES));
  if (current.every((b) => b === 0)) return { problem: 'the current key is empty' };
  return { rotatedAt, current, previous: prev.every((b) => b === 0) ? null : prev };
}

/** The key set to use at `now`: fresh keys, a rotation when one is due, or `s` unchanged. */
export function nextTicketKeys(s: TicketKeySet | null, now: number, rotationMs: number, fresh: () => Buffer): { set: TicketKeySet; rotated: boolean } {
  if (s === null) return { set: { rotatedAt: now, current: fresh(), previous: null }, rotated: true };
  if (now - s.rotatedAt < rotationMs) return { set: s, rotated: false };
  return { set: { rotatedAt: now, current: fresh(), previous: s.current }, rotated: true };
}

/** The server's session lifetime: a ticket is accepted for two rotations, no longer. */
export function ticketLifetimeSeconds(rotationMs: number): number {
  return Math.ceil((2 * rotationMs) / 1000);
}

/** Node's internal ticket-key hook (see the header); absent on a Node without it. */
interface TicketContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, enc: boolean) => unknown[];
}
const nameOf = (k: Buffer) => k.subarray(0, 16);
const hmacOf = (k: Buffer) => k.subarray(16, 32);
const aesOf = (k: Buffer) => k.subarray(32, 48);

/** Seals with the current key; opens with the current one, or the previous one (and renews). */
export function ticketCallback(keys: () => TicketKeySet): (name: Buffer, iv: Buffer, enc: boolean) => unknown[] {
  return (name, _iv, enc) => {
    const { current, previous } = keys();
    if (enc) return [1, hmacOf(current), aesOf(current), nameOf(current), randomBytes(16)];
    if (name.equals(nameOf(current))) return [1, hmacOf(current), aesOf(current)];
    if (previous !== null && name.equals(nameOf(previous))) return [2, hmacOf(previous), aesOf(previous)];
    return [0, hmacOf(current), aesOf(current)];
  };
}

async function readKeyFile(file: string): Promise<{ data: Buffer; st: Stats } | null> {
  let fh;
  try {
    // O_NOFOLLOW: a symlink planted here is refused (ELOOP), not followed.
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') return { data: Buffer.alloc(0), st: { isFile: () => false } as Stats };
    throw err;
  }
  try {
    const st = await fh.stat();
    // Never read a huge or special file whole: the size check refuses it anyway.
    const data = st.isFile() && st.size <= TICKET_FILE_BYTES ? await fh.readFile() : Buffer.alloc(0);
    return { data, st };
  } finally {
    await fh.close();
  }
}

/**
 * Serves `keys()` on `server`: the current key seals, current and previous open. Call
 * again after every `setSecureContext`. False when this Node lacks the hook (then only the
 * current key is served).
 */
export function serveTicketKeys(server: tls.Server, keys: () => TicketKeySet): boolean {
  server.setTicketKeys(keys().current);
  const ctx = (server as unknown as { _sharedCreds?: { context?: TicketContext } })._sharedCreds?.context;
  if (ctx === undefined || typeof ctx.enableTicketKeyCallback !== 'function') return false;
  ctx.enableTicketKeyCallback();
  ctx.onticketkeycallback = ticketCallback(keys);
  return true;
}

/**
 * The coordinator's ticket keys: loaded (or made) at start, rotated on a timer, applied to
 * the server after each rotation is on disk (a key that sealed tickets is never lost).
 */
export class TicketKeyRing {
  #set: TicketKeySet;
  readonly #file: string;
  readonly #rotationMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  #servers: tls.Server[] = [];
  #listeners: Array<(keys: TicketKeySet) => void> = [];
  #timer: NodeJS.Timeout | null = null;
  #hookMissingLogged = false;
  #stopped = false;

  private constructor(file: string, set: TicketKeySet, rotationMs: number, log: Logger, now: () => number) {
    this.#file = file;
    this.#set = set;
    this.#rotationMs = rotationMs;
    this.#log = log;
    this.#now = now;
  }

  /** Loads the key file (refusing and replacing a bad one), rotating if a rotation is due. */
  static async open(file: string, rotationMs: number, log: Logger, now: () => number = Date.now): Promise<TicketKeyRing> {
    try {
      const t = now();
      const read = await readKeyFile(file);
      let loaded: TicketKeySet | null = null;
      if (read !== null) {
        const facts = { regular: read.st.isFile(), uid: read.st.uid, mode: read.st.mode, size: read.st.size, ourUid: process.getuid?.() ?? read.st.uid };
        const d = decodeTicketKeys(read.data, facts, t, rotationMs);
        if ('problem' in d) log.warn({ code: 'NK_TLS_TICKET_KEYS_REFUSED', file, problem: d.problem }, `TLS ticket key file refused (${d.problem}); it is replaced by fresh keys and agents do one full handshake`);
        else loaded = d;
      }
      const next = nextTicketKeys(loaded, t, rotationMs, () => randomBytes(KEY_BYTES));
      if (next.rotated) await writeFileDurable(file, encodeTicketKeys(next.set), 0o600);
      return new TicketKeyRing(file, next.set, rotationMs, log, now);
    } catch (err) {
      throw new AppError('NK_TLS_SETUP_FAILED', `cannot prepare the TLS ticket keys in ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
    }
  }

  get keys(): TicketKeySet {
    return this.#set;
  }

  /**
   * Serves the keys on `server`. Call again after every `setSecureContext` (a certificate
   * renewal): that makes a new context, with Node's random keys and no hook.
   */
  attach(server: tls.Server): void {
    if (!this.#servers.includes(server)) this.#servers.push(server);
    if (!serveTicketKeys(server, () => this.#set) && !this.#hookMissingLogged) {
      this.#hookMissingLogged = true;
      this.#log.warn('this Node has no TLS ticket-key hook: only the current ticket key is served, so tickets from before a rotation do not resume');
    }
  }

  /** Called after each rotation is on disk (the gateway workers get the new keys). */
  onRotated(fn: (keys: TicketKeySet) => void): void {
    this.#listeners.push(fn);
  }

  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    const due = Math.max(0, this.#set.rotatedAt + this.#rotationMs - this.#now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.rotateIfDue().finally(() => this.start());
    }, Math.min(due + 10, 2 ** 31 - 1));
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#servers = [];
  }

  /** Rotates when due: on disk first, then served. A failed write keeps the old keys and is retried. */
  async rotateIfDue(): Promise<boolean> {
    const next = nextTicketKeys(this.#set, this.#now(), this.#rotationMs, () => randomBytes(KEY_BYTES));
    if (!next.rotated) return false;
    try {
      await writeFileDurable(this.#file, encodeTicketKeys(next.set), 0o600);
    } catch (err) {
      this.#log.error({ err, file: this.#file }, 'TLS ticket key rotation could not be written; the current keys are kept and it is retried');
      await new Promise((r) => setTimeout(r, 60_000).unref());
      return false;
    }
    this.#set = next.set;
    for (const s of this.#servers) s.setTicketKeys(this.#set.current);
    for (const fn of this.#listeners) fn(this.#set);
    this.#log.info('TLS ticket keys rotated; the previous key still opens tickets until the next rotation');
    return true;
  }
}
