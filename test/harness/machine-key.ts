/** A fresh machine key's public half, as an enrollment body carries it (for tests that enroll by hand). */
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey } from '@nodekeeper/common';

export const newMachinePublicKey = (): string => rawPublicKey(generateKeyPairSync('ed25519').publicKey);
