/**
 * Integrity (architecture invariants 2 and 9): the artifact's sha256 must equal the
 * command's, always; when the agent has trusted keys, the artifact must also carry an
 * ed25519 signature that one of them verifies over the install statement (package,
 * version, sha256, size and manifest as canonical JSON: packages/protocol
 * install-statement.ts), and unsigned artifacts are refused. So a manifest changed
 * after signing (a link, a service) is refused like a changed artifact.
 */
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppError } from '@nodekeeper/common';
import { installStatement, type InstallParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';

/** An ed25519 public key the agent trusts, with the file it came from (for messages). */
export interface TrustedKey {
  readonly source: string;
  readonly key: KeyObject;
}

/** Parses a PEM ed25519 public key; throws NK_INSTALL_TRUSTED_KEY_INVALID. */
export function parseTrustedKey(pem: string, source: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new AppError(InstallErrorCode.badTrustedKey, `trusted key ${source} is not a PEM public key: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new AppError(InstallErrorCode.badTrustedKey, `trusted key ${source} is ${key.asymmetricKeyType ?? 'unknown'}, not ed25519`);
  }
  return { source, key };
}

/** Reads the --trusted-key files at start-up, so a bad key stops the agent at once. */
export function loadTrustedKeys(files: readonly string[]): TrustedKey[] {
  return files.map((file) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      throw new AppError(InstallErrorCode.badTrustedKey, `cannot read trusted key ${file}: ${(err as Error).message}`, { cause: err });
    }
    return parseTrustedKey(pem, file);
  });
}

/**
 * Checks a downloaded artifact's digest and the statement's signature. `sha256` is what
 * the download computed (or, for a version unpacked earlier, the digest recorded when it
 * was). Throws NK_INSTALL_DIGEST_MISMATCH, NK_INSTALL_UNSIGNED or
 * NK_INSTALL_SIGNATURE_INVALID; returns how it was verified.
 */
export function verifyArtifact(params: InstallParams, sha256: string, keys: readonly TrustedKey[]): { signedBy: string | null } {
  const ref = params.artifact;
  if (sha256 !== ref.sha256) {
    throw new AppError(InstallErrorCode.digestMismatch, `artifact sha256 is ${sha256}, expected ${ref.sha256}`, { context: { expected: ref.sha256, actual: sha256 } });
  }
  return verifyStatement(params, keys);
}

/** Checks the signature over `params`' install statement (nothing to check without trusted keys). */
export function verifyStatement(params: InstallParams, keys: readonly TrustedKey[]): { signedBy: string | null } {
  const ref = params.artifact;
  // Without trusted keys there is nothing to check a signature against; the digest came
  // over the authenticated coordinator connection and is the integrity check.
  if (keys.length === 0) return { signedBy: null };
  if (ref.signature === undefined) {
    throw new AppError(InstallErrorCode.unsigned, `${params.package} ${params.version} (artifact ${ref.sha256}) is not signed, and this agent requires signatures (${keys.length} trusted key(s))`);
  }
  const statement = Buffer.from(installStatement(params), 'utf8');
  const signature = Buffer.from(ref.signature, 'base64');
  for (const k of keys) {
    if (verifySignature(null, statement, k.key, signature)) return { signedBy: k.source };
  }
  throw new AppError(
    InstallErrorCode.signatureInvalid,
    `${params.package} ${params.version}: the signature verifies against none of the ${keys.length} trusted key(s) over the install statement (package, version, sha256 ${ref.sha256}, size, manifest); a changed manifest or a signature over the bare digest is refused`,
  );
}
