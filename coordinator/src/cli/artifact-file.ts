/**
 * The local half of `nkctl artifact push`: the file's sha256 in one streaming pass
 * (the signature covers the digest, and it must be known before the upload starts),
 * the signing key, and progress on a terminal. Nothing here holds the file in memory.
 * What is signed is the install statement (sign-statement.ts).
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { formatBytes } from './package-views.ts';

/** Size of a regular, readable file; NK_CLI_FILE_UNREADABLE otherwise. */
export function artifactSize(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch (cause) {
    throw usageError(CliErrorCode.fileUnreadable, `cannot read artifact ${path}: ${(cause as Error).message}`, { cause });
  }
  if (!st.isFile()) throw usageError(CliErrorCode.fileUnreadable, `artifact ${path} is not a regular file`);
  if (st.size === 0) throw usageError(CliErrorCode.usage, `artifact ${path} is empty`);
  return st.size;
}

/** The file's sha256 digest (32 raw bytes), read as a stream. */
export async function sha256File(path: string): Promise<Buffer> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(path), hash);
  } catch (cause) {
    throw usageError(CliErrorCode.fileUnreadable, `cannot read artifact ${path}: ${(cause as Error).message}`, { cause });
  }
  return hash.digest();
}

/** Read a PEM ed25519 private key; NK_CLI_BAD_KEY for anything else. */
export function loadSigningKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (cause) {
    throw usageError(CliErrorCode.fileUnreadable, `cannot read signing key ${path}: ${(cause as Error).message}`, { cause });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    throw usageError(CliErrorCode.badKey, `signing key ${path} is not a PEM private key (make one with: openssl genpkey -algorithm ed25519 -out key.pem)`, { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw usageError(CliErrorCode.badKey, `signing key ${path} is ${key.asymmetricKeyType ?? 'not asymmetric'}, not ed25519`);
  }
  return key;
}

/**
 * A progress reporter for a terminal: `sent 12.0 MiB of 100.0 MiB (12%)` rewritten
 * in place at most every `everyMs`, and a final line. A no-op unless `tty`.
 */
export function progressReporter(write: (t: string) => void, tty: boolean, total: number, now: () => number, everyMs = 200): { update(sent: number): void; done(): void } {
  if (!tty) return { update: () => {}, done: () => {} };
  let lastAt = -Infinity;
  let shown = false;
  const line = (sent: number) => `\rsent ${formatBytes(sent)} of ${formatBytes(total)} (${Math.floor((sent / total) * 100)}%)\x1b[K`;
  return {
    update(sent: number) {
      const t = now();
      if (t - lastAt < everyMs && sent < total) return;
      lastAt = t;
      shown = true;
      write(line(sent));
    },
    done() {
      if (shown) write('\n');
    },
  };
}
