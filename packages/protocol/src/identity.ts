/**
 * Machine identity beyond the credential (architecture invariant 10): each agent holds an
 * ed25519 key pair made at enrollment; the coordinator keeps the public half. Replacing
 * an enrolled machine's credential needs a signature by that key over a coordinator
 * nonce (or an admin's `nkctl machine reset`), so a bootstrap token alone never can.
 *
 * Pure: the statement both sides sign and check, and the shapes on the wire.
 */
import { Type, type Static } from '@sinclair/typebox';

/** An ed25519 public key: its 32 raw bytes in standard base64 (44 characters). */
export const MachinePublicKey = Type.String({ minLength: 44, maxLength: 44, pattern: '^[A-Za-z0-9+/]{43}=$' });

/** A coordinator nonce for one re-enrollment: 32 random bytes, base64url. */
export const EnrollNonce = Type.String({ minLength: 43, maxLength: 43, pattern: '^[A-Za-z0-9_-]{43}$' });

/** An ed25519 signature (64 bytes) in standard base64. */
export const Ed25519Signature = Type.String({ minLength: 88, maxLength: 88, pattern: '^[A-Za-z0-9+/]{86}==$' });

/** Proof that the caller holds the key an enrolled machine registered. */
export const KeyProof = Type.Object(
  {
    nonce: EnrollNonce,
    /** Signature by the machine's registered key over reenrollStatement(...). */
    signature: Ed25519Signature,
  },
  { additionalProperties: false },
);
export type KeyProof = Static<typeof KeyProof>;

/**
 * The exact bytes a re-enrollment proof signs. It binds the machine (name and
 * machine-id), the coordinator's single-use nonce, and the key that will be registered
 * next, so a proof can be used once, for one machine, and cannot smuggle in another key.
 */
export function reenrollStatement(s: { machine: string; machineId: string; nonce: string; publicKey: string }): Buffer {
  return Buffer.from(['nodekeeper.io/reenroll/v1', s.machine, s.machineId, s.nonce, s.publicKey].join('\n'), 'utf8');
}
