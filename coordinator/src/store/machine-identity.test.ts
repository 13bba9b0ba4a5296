/**
 * Machine identity in the store (architecture invariant 10): a bootstrap token enrolls
 * new machines only; re-enrollment needs a signature by the registered machine key or an
 * admin reset; credentials expire and are rotated without a moment with none that works.
 */
import { after, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { hasCode, rawPublicKey, signEd25519 } from '@nodekeeper/common';
import { reenrollStatement } from '@nodekeeper/protocol';
import { openStore, type Store } from './db.ts';
import { StoreErrorCode } from './errors.ts';
import { dumpTables, identity, tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

const HOUR = 3_600_000;
const TTL = 24 * HOUR;
let n = 0;
let clock = 1_700_000_000_000;
let store: Store;
let file: string;
beforeEach(() => {
  store?.close();
  file = tmp.file(`identity-${++n}.db`);
  clock = 1_700_000_000_000;
  store = openStore(file, { now: () => clock });
});
after(() => store?.close());

const code = (c: string) => (err: unknown) => hasCode(err, c);
const newKey = (): { priv: KeyObject; pub: string } => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { priv: privateKey, pub: rawPublicKey(privateKey) };
};
const NONCE = 'n'.repeat(43);
const proof = (key: KeyObject, machine: string, machineId: string, publicKey: string, nonce = NONCE) => ({
  nonce,
  signature: signEd25519(reenrollStatement({ machine, machineId, nonce, publicKey }), key),
});

function enrolled(name = 'node-1', machineId = 'abc') {
  const key = newKey();
  const { token } = store.createToken({ ttlMs: HOUR, maxUses: 10, description: '' });
  const { credential } = store.enroll({ token, identity: identity(name, machineId), agentVersion: '0.1.0', publicKey: key.pub, credentialTtlMs: TTL });
  return { key, token, credential };
}

describe('a bootstrap token cannot take over an enrolled machine', () => {
  for (const [what, machineId] of [['with its own machine id', 'abc'], ['with another machine id', 'evil']] as const) {
    test(`re-enrolling ${what} is refused, tells nothing of the machine, and changes nothing`, () => {
      const { token, credential } = enrolled();
      const attacker = newKey();
      const before = dumpTables(file);
      assert.throws(
        () => store.enroll({ token, identity: identity('node-1', machineId), agentVersion: 'x', publicKey: attacker.pub }),
        (err: unknown) => {
          assert.ok(hasCode(err, StoreErrorCode.machineAlreadyEnrolled));
          assert.equal((err as Error).message.includes('abc'), false, 'the enrolled machine id is not revealed');
          assert.equal(JSON.stringify((err as { context?: unknown }).context ?? {}).includes('abc'), false);
          return true;
        },
      );
      assert.deepEqual(dumpTables(file), before, 'no token use spent, no credential replaced');
      assert.equal(store.authenticateMachine(credential).name, 'node-1', 'the real credential still works');
    });
  }
});

describe('re-enrollment by proof of the machine key', () => {
  test('a signature by the registered key re-enrolls without a token and voids the old credential', () => {
    const { key, credential } = enrolled();
    const next = newKey();
    const { credential: fresh, machine } = store.enroll({
      identity: identity('node-1', 'abc'), agentVersion: '0.2.0', publicKey: next.pub, proof: proof(key.priv, 'node-1', 'abc', next.pub),
    });
    assert.equal(machine.publicKey, next.pub, 'the proof may register a new key it signed over');
    assert.throws(() => store.authenticateMachine(credential), code(StoreErrorCode.credentialInvalid));
    assert.equal(store.authenticateMachine(fresh).name, 'node-1');
    assert.deepEqual(store.machineEvents('node-1', 10).map((e) => e.reason), ['Enrolled', 'ReEnrolled']);
  });

  const forgeries: Array<[string, (k: { priv: KeyObject; pub: string }, attacker: { priv: KeyObject; pub: string }) => { publicKey: string; proof: { nonce: string; signature: string }; machineId?: string }]> = [
    ['signed by another key', (_k, a) => ({ publicKey: a.pub, proof: proof(a.priv, 'node-1', 'abc', a.pub) })],
    ['a real signature over another key than the one presented', (k, a) => ({ publicKey: a.pub, proof: proof(k.priv, 'node-1', 'abc', k.pub) })],
    ['a real signature over another nonce', (k) => ({ publicKey: k.pub, proof: { nonce: 'm'.repeat(43), signature: proof(k.priv, 'node-1', 'abc', k.pub).signature } })],
    ['a real signature over another machine id', (k) => ({ publicKey: k.pub, machineId: 'evil', proof: proof(k.priv, 'node-1', 'abc', k.pub) })],
    ['a signature of the wrong length', (k) => ({ publicKey: k.pub, proof: { nonce: NONCE, signature: `${'A'.repeat(86)}==` } })],
  ];
  for (const [what, forge] of forgeries) {
    test(`is refused with NK_ENROLL_PROOF_INVALID: ${what}`, () => {
      const { key, credential } = enrolled();
      const f = forge(key, newKey());
      const before = dumpTables(file);
      assert.throws(() => store.enroll({ identity: identity('node-1', f.machineId ?? 'abc'), agentVersion: 'x', publicKey: f.publicKey, proof: f.proof }), code(StoreErrorCode.proofInvalid));
      assert.deepEqual(dumpTables(file), before);
      assert.equal(store.authenticateMachine(credential).name, 'node-1');
    });
  }

  test('a machine with no registered key cannot be re-enrolled by proof; nor can an unknown one', () => {
    const { token } = store.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
    store.enroll({ token, identity: identity('legacy', 'abc'), agentVersion: '0.1.0' });
    const k = newKey();
    assert.throws(() => store.enroll({ identity: identity('legacy', 'abc'), agentVersion: 'x', publicKey: k.pub, proof: proof(k.priv, 'legacy', 'abc', k.pub) }), code(StoreErrorCode.proofInvalid));
    assert.throws(() => store.enroll({ identity: identity('ghost', 'abc'), agentVersion: 'x', publicKey: k.pub, proof: proof(k.priv, 'ghost', 'abc', k.pub) }), code(StoreErrorCode.proofInvalid));
    assert.throws(() => store.enroll({ identity: identity('ghost', 'abc'), agentVersion: 'x', publicKey: k.pub }), code(StoreErrorCode.enrollUnauthorised));
  });

  test('a revoked machine cannot come back by proof', () => {
    const { key } = enrolled();
    store.revokeMachine('node-1');
    assert.throws(() => store.enroll({ identity: identity('node-1', 'abc'), agentVersion: 'x', publicKey: key.pub, proof: proof(key.priv, 'node-1', 'abc', key.pub) }), code(StoreErrorCode.machineRevoked));
  });
});

describe('admin reset', () => {
  test('voids the credential and key; the next token enrollment of the name becomes the machine, once', () => {
    const { token, credential } = enrolled();
    store.setPackageOverrides('node-1', { kubelet: { version: '1.31.3' } });
    const reset = store.resetMachine('node-1', 'an admin');
    assert.equal(reset.publicKey, null);
    assert.throws(() => store.authenticateMachine(credential), code(StoreErrorCode.credentialInvalid));
    const reinstalled = newKey();
    const { machine, credential: fresh } = store.enroll({ token, identity: identity('node-1', 'new-id'), agentVersion: '0.3.0', publicKey: reinstalled.pub });
    assert.equal(machine.machineId, 'new-id');
    assert.equal(machine.publicKey, reinstalled.pub);
    assert.deepEqual(machine.packageOverrides, { kubelet: { version: '1.31.3' } }, 'the machine keeps its state');
    assert.equal(store.authenticateMachine(fresh).name, 'node-1');
    assert.throws(() => store.enroll({ token, identity: identity('node-1', 'new-id'), agentVersion: 'x', publicKey: newKey().pub }), code(StoreErrorCode.machineAlreadyEnrolled), 'the reset is used up');
    const reasons = store.machineEvents('node-1', 10).map((e) => e.reason);
    assert.deepEqual(reasons.filter((r) => r !== 'PackagesPinned'), ['Enrolled', 'MachineReset', 'ReEnrolled']);
  });

  test('lifts a revocation', () => {
    const { token } = enrolled();
    store.revokeMachine('node-1');
    store.resetMachine('node-1', 'an admin');
    assert.equal(store.enroll({ token, identity: identity('node-1', 'abc'), agentVersion: 'x', publicKey: newKey().pub }).machine.revokedAt, null);
  });

  test('of an unknown machine is NK_MACHINE_NOT_FOUND', () => {
    assert.throws(() => store.resetMachine('nope', 'an admin'), code(StoreErrorCode.machineNotFound));
  });
});

describe('credential expiry and rotation', () => {
  test('a credential past its lifetime is NK_AUTH_CREDENTIAL_EXPIRED', () => {
    const { credential } = enrolled();
    clock += TTL - 1;
    assert.equal(store.authenticateMachine(credential).name, 'node-1');
    clock += 1;
    assert.throws(() => store.authenticateMachine(credential), code(StoreErrorCode.credentialExpired));
  });

  test('both credentials work until the agent confirms; then only the new one', () => {
    const { credential } = enrolled();
    const next = store.issueNextCredential('node-1', TTL);
    assert.equal(store.authenticateMachine(credential).name, 'node-1');
    assert.equal(store.confirmCredential('node-1', 'not-it'), false);
    assert.equal(store.confirmCredential('node-1', next.id), true);
    assert.throws(() => store.authenticateMachine(credential), code(StoreErrorCode.credentialInvalid));
    assert.equal(store.authenticateMachine(next.credential).credentialExpiresAt, next.expiresAt);
    assert.equal(store.confirmCredential('node-1', next.id), false, 'confirming twice changes nothing');
  });

  test('presenting the pending credential confirms it (the agent saved it, then lost the connection)', () => {
    const { credential } = enrolled();
    const next = store.issueNextCredential('node-1', TTL);
    assert.equal(store.authenticateMachineCredential(next.credential).credentialId, next.id);
    assert.throws(() => store.authenticateMachine(credential), code(StoreErrorCode.credentialInvalid));
  });

  test('a later rotation replaces an unconfirmed one', () => {
    enrolled();
    const first = store.issueNextCredential('node-1', TTL);
    const second = store.issueNextCredential('node-1', TTL);
    assert.throws(() => store.authenticateMachine(first.credential), code(StoreErrorCode.credentialInvalid));
    assert.equal(store.authenticateMachine(second.credential).name, 'node-1');
  });

  test('no rotation for a revoked or reset machine', () => {
    enrolled('a');
    enrolled('b', 'def');
    store.revokeMachine('a');
    store.resetMachine('b', 'an admin');
    assert.throws(() => store.issueNextCredential('a', TTL), code(StoreErrorCode.machineNotFound));
    assert.throws(() => store.issueNextCredential('b', TTL), code(StoreErrorCode.machineNotFound));
  });
});

describe('machine keys of machines enrolled before keys existed', () => {
  test('are registered once; a different key later is reported, not stored', () => {
    const { token } = store.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
    store.enroll({ token, identity: identity('legacy'), agentVersion: '0.1.0' });
    const k = newKey();
    assert.equal(store.registerMachineKey('legacy', k.pub), 'registered');
    assert.equal(store.registerMachineKey('legacy', k.pub), 'same');
    assert.equal(store.registerMachineKey('legacy', newKey().pub), 'different');
    assert.equal(store.getMachine('legacy')?.publicKey, k.pub);
  });
});
