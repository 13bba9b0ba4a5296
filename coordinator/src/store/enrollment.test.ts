import { after, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { hasCode } from '@nodekeeper/common';
import { openStore, type Store } from './db.ts';
import { StoreErrorCode } from './errors.ts';
import { dumpTables, identity, tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

let n = 0;
let clock = 1_700_000_000_000;
let store: Store;
let file: string;
beforeEach(() => {
  store?.close();
  file = tmp.file(`enroll-${++n}.db`);
  clock = 1_700_000_000_000;
  store = openStore(file, { now: () => clock });
});
after(() => store?.close());

const code = (c: string) => (err: unknown) => hasCode(err, c);
const HOUR = 3_600_000;

describe('bootstrap tokens', () => {
  test('have kubeadm form and are stored hashed only', () => {
    const { token, record } = store.createToken({ ttlMs: HOUR, maxUses: 2, description: 'rack 1' });
    assert.match(token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    assert.equal(token.split('.')[0], record.id);
    assert.deepEqual(record, { id: record.id, description: 'rack 1', createdAt: clock, expiresAt: clock + HOUR, maxUses: 2, used: 0, revokedAt: null });
    const dumped = JSON.stringify(dumpTables(file));
    assert.equal(dumped.includes(token.split('.')[1] ?? '!'), false, 'the secret is nowhere in the file');
    assert.deepEqual(store.listTokens(), [record]);
  });

  test('refuse a non-positive ttl or fewer than one use', () => {
    assert.throws(() => store.createToken({ ttlMs: 0, maxUses: 1, description: '' }), RangeError);
    assert.throws(() => store.createToken({ ttlMs: -5, maxUses: 1, description: '' }), RangeError);
    assert.throws(() => store.createToken({ ttlMs: HOUR, maxUses: 0, description: '' }), RangeError);
    assert.throws(() => store.createToken({ ttlMs: HOUR, maxUses: 1.5, description: '' }), RangeError);
    assert.deepEqual(store.listTokens(), []);
  });

  test('count their uses, then are exhausted', () => {
    const { token, record } = store.createToken({ ttlMs: HOUR, maxUses: 2, description: '' });
    store.enroll({ token, identity: identity('node-a'), agentVersion: '0.1.0' });
    assert.equal(store.listTokens()[0]?.used, 1);
    store.enroll({ token, identity: identity('node-b'), agentVersion: '0.1.0' });
    assert.equal(store.listTokens()[0]?.used, 2);
    assert.throws(() => store.enroll({ token, identity: identity('node-c'), agentVersion: '0.1.0' }), code(StoreErrorCode.tokenExhausted));
    assert.equal(store.listTokens()[0]?.used, 2);
    assert.equal(store.listTokens()[0]?.id, record.id);
  });

  test('revoking an unknown token is NK_TOKEN_NOT_FOUND; revoking twice is harmless', () => {
    assert.throws(() => store.revokeToken('zzzzzz'), code(StoreErrorCode.tokenNotFound));
    const { record } = store.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
    clock += 5;
    const revoked = store.revokeToken(record.id);
    assert.equal(revoked.revokedAt, clock);
    clock += 5;
    assert.equal(store.revokeToken(record.id).revokedAt, revoked.revokedAt);
    assert.equal(store.listEvents({ object: `token/${record.id}`, limit: 10 }).filter((e) => e.reason === 'TokenRevoked').length, 1);
  });
});

describe('enrollment', () => {
  test('creates the machine, returns a working credential and records an Enrolled event', () => {
    const { token } = store.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
    const { machine, credential } = store.enroll({ token, identity: identity('node-1', 'abc'), agentVersion: '0.1.0' });
    assert.match(credential, /^nkm\.[a-f0-9]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.equal(machine.name, 'node-1');
    assert.equal(machine.machineId, 'abc');
    assert.equal(machine.liveness.state, 'Pending');
    assert.equal(machine.agentVersion, '0.1.0');
    assert.deepEqual(machine.labels, { pool: 'workers' });
    assert.deepEqual(store.authenticateMachine(credential), { name: 'node-1', machineId: 'abc', credentialExpiresAt: machine.credentialExpiresAt });
    assert.deepEqual(store.getMachine('node-1'), machine);
    const events = store.machineEvents('node-1', 10);
    assert.deepEqual(events.map((e) => e.reason), ['Enrolled']);
    assert.equal(JSON.stringify(dumpTables(file)).includes(credential.split('.')[2] ?? '!'), false, 'the secret is nowhere in the file');
  });

  const failures: Array<[string, string, (s: Store) => { token: string; hostname?: string; machineId?: string }]> = [
    ['malformed token', StoreErrorCode.tokenInvalid, () => ({ token: 'not-a-token' })],
    ['unknown token id', StoreErrorCode.tokenInvalid, () => ({ token: 'zzzzzz.0123456789abcdef' })],
    ['wrong secret', StoreErrorCode.tokenInvalid, (s) => ({ token: `${s.createToken({ ttlMs: HOUR, maxUses: 5, description: '' }).record.id}.0123456789abcdef` })],
    ['expired token', StoreErrorCode.tokenExpired, (s) => {
      const { token } = s.createToken({ ttlMs: 1000, maxUses: 5, description: '' });
      clock += 1000;
      return { token };
    }],
    ['revoked token', StoreErrorCode.tokenRevoked, (s) => {
      const { token, record } = s.createToken({ ttlMs: HOUR, maxUses: 5, description: '' });
      s.revokeToken(record.id);
      return { token };
    }],
    ['exhausted token', StoreErrorCode.tokenExhausted, (s) => {
      const { token } = s.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
      s.enroll({ token, identity: identity('first'), agentVersion: '0.1.0' });
      return { token };
    }],
    ['name taken by another machine id', StoreErrorCode.machineAlreadyEnrolled, (s) => {
      const { token } = s.createToken({ ttlMs: HOUR, maxUses: 5, description: '' });
      s.enroll({ token, identity: identity('node-1', 'aaa'), agentVersion: '0.1.0' });
      return { token, hostname: 'node-1', machineId: 'bbb' };
    }],
    ['name taken, same machine id: a token never replaces a credential', StoreErrorCode.machineAlreadyEnrolled, (s) => {
      const { token } = s.createToken({ ttlMs: HOUR, maxUses: 5, description: '' });
      s.enroll({ token, identity: identity('node-1', 'aaa'), agentVersion: '0.1.0' });
      return { token, hostname: 'node-1', machineId: 'aaa' };
    }],
    ['revoked machine', StoreErrorCode.machineRevoked, (s) => {
      const { token } = s.createToken({ ttlMs: HOUR, maxUses: 5, description: '' });
      s.enroll({ token, identity: identity('node-1', 'aaa'), agentVersion: '0.1.0' });
      s.revokeMachine('node-1');
      return { token, hostname: 'node-1', machineId: 'aaa' };
    }],
    ['hostname that is not a valid name', StoreErrorCode.machineNameInvalid, (s) => {
      const { token } = s.createToken({ ttlMs: HOUR, maxUses: 5, description: '' });
      return { token, hostname: '../Node_1' };
    }],
  ];
  for (const [name, expected, setup] of failures) {
    test(`refused with ${expected} (${name}), and nothing changes`, () => {
      const { token, hostname = 'node-x', machineId } = setup(store);
      const before = dumpTables(file);
      assert.throws(() => store.enroll({ token, identity: identity(hostname, machineId), agentVersion: '0.1.0' }), code(expected));
      assert.deepEqual(dumpTables(file), before);
    });
  }
});

describe('machine credentials', () => {
  test('malformed, unknown and wrong credentials are NK_AUTH_CREDENTIAL_INVALID', () => {
    const { token } = store.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
    const { credential } = store.enroll({ token, identity: identity('node-1'), agentVersion: '0.1.0' });
    const [prefix, id, secret = ''] = credential.split('.');
    const wrongSecret = `${prefix}.${id}.${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
    const bad: unknown[] = ['', 'nkm', 'nkm..', `nka.${id}.${secret}`, `nkm.0000000000000000.${secret}`, wrongSecret, `${credential}x`, 'x'.repeat(10_000), null, 42];
    for (const c of bad) assert.throws(() => store.authenticateMachine(c), code(StoreErrorCode.credentialInvalid), String(c).slice(0, 40));
  });

  test('a revoked machine is refused with NK_MACHINE_REVOKED and an event is recorded', () => {
    const { token } = store.createToken({ ttlMs: HOUR, maxUses: 1, description: '' });
    const { credential } = store.enroll({ token, identity: identity('node-1'), agentVersion: '0.1.0' });
    clock += 10;
    const revoked = store.revokeMachine('node-1');
    assert.equal(revoked.revokedAt, clock);
    assert.throws(() => store.authenticateMachine(credential), code(StoreErrorCode.machineRevoked));
    assert.deepEqual(store.machineEvents('node-1', 10).map((e) => [e.type, e.reason]), [['Normal', 'Enrolled'], ['Warning', 'Revoked']]);
    assert.throws(() => store.revokeMachine('nope'), code(StoreErrorCode.machineNotFound));
  });

  test('listMachines is sorted by name', () => {
    const { token } = store.createToken({ ttlMs: HOUR, maxUses: 3, description: '' });
    for (const h of ['node-c', 'node-a', 'node-b']) store.enroll({ token, identity: identity(h), agentVersion: '0.1.0' });
    assert.deepEqual(store.listMachines().map((m) => m.name), ['node-a', 'node-b', 'node-c']);
    assert.equal(store.getMachine('node-z'), null);
  });
});

describe('API credentials', () => {
  test('authenticate with their role; anything else is NK_AUTH_CREDENTIAL_INVALID', () => {
    assert.equal(store.countApiCredentials(), 0);
    const admin = store.createApiCredential({ role: 'admin', description: 'first start' });
    const reader = store.createApiCredential({ role: 'read-only', description: 'grafana' });
    assert.match(admin.credential, /^nka\.[a-f0-9]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.equal(store.countApiCredentials(), 2);
    assert.deepEqual(store.authenticateApi(admin.credential), admin.record);
    assert.equal(store.authenticateApi(reader.credential).role, 'read-only');
    const asMachine = admin.credential.replace(/^nka/, 'nkm');
    for (const c of [asMachine, 'Bearer x', '', `${admin.credential.slice(0, -1)}_`]) {
      assert.throws(() => store.authenticateApi(c), code(StoreErrorCode.credentialInvalid));
    }
    assert.throws(() => store.createApiCredential({ role: 'root' as 'admin', description: '' }), TypeError);
  });
});

describe('events', () => {
  test('are append-only, listed oldest first, and page forward with afterId', () => {
    const ids = [1, 2, 3, 4].map((i) => store.recordEvent({ object: i % 2 ? 'machine/a' : 'machine/b', type: 'Normal', reason: 'Tested', message: `e${i}` }).id);
    assert.deepEqual(store.listEvents({ limit: 2 }).map((e) => e.message), ['e3', 'e4']);
    assert.deepEqual(store.listEvents({ object: 'machine/a', limit: 10 }).map((e) => e.message), ['e1', 'e3']);
    assert.deepEqual(store.listEvents({ afterId: ids[0] ?? 0, limit: 2 }).map((e) => e.message), ['e2', 'e3']);
    assert.throws(() => store.listEvents({ limit: 0 }), RangeError);
    assert.throws(() => store.recordEvent({ object: 'machine/a', type: 'Bad' as 'Normal', reason: 'X', message: '' }), TypeError);
    store.close();
    const raw = new Database(file);
    assert.throws(() => raw.prepare('UPDATE events SET message = ?').run('x'), /append-only/);
    assert.throws(() => raw.prepare('DELETE FROM events').run(), /append-only/);
    raw.close();
  });
});

