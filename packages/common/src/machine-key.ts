/**
 * The machine key's wire form: an ed25519 public key as the base64 of its 32 raw bytes
 * (what `MachinePublicKey` in the protocol describes). Both the agent (which makes and
 * signs with the key) and the coordinator (which checks signatures) convert with these.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** The base64 raw form of an ed25519 public (or private) key. */
export function rawPublicKey(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new TypeError(`machine keys are ed25519, got ${pub.asymmetricKeyType ?? 'unknown'}`);
  const jwk = pub.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new TypeError('ed25519 key has no public part');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** The public key of a base64 raw ed25519 key; null when it is not one. */
export function publicKeyFromRaw(raw: string): KeyObject | null {
  const bytes = Buffer.from(raw, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== raw) return null;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') }, format: 'jwk' });
  } catch {
    return null;
  }
}

/** Signs `data` with an ed25519 private key; base64. */
export function signEd25519(data: Buffer, key: KeyObject): string {
  return sign(null, data, key).toString('base64');
}

/** Whether `signature` (base64) is `publicKey`'s (base64 raw) over `data`. Never throws. */
export function verifyEd25519(data: Buffer, signature: string, publicKey: string): boolean {
  const key = publicKeyFromRaw(publicKey);
  const sig = Buffer.from(signature, 'base64');
  if (key === null || sig.length !== 64) return false;
  try {
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}
