import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hashSecret, newCredential, newToken, parseCredential, parseToken, randomAlnum, secretMatches } from './secrets.ts';

test('tokens are kubeadm-shaped and parse back', () => {
  for (let i = 0; i < 50; i++) {
    const t = newToken();
    assert.match(t.token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const p = parseToken(t.token);
    assert.equal(p?.id, t.id);
    assert.ok(p !== null && secretMatches(p.secret, t.hash));
  }
});

test('random [a-z0-9] strings use the whole alphabet and nothing else', () => {
  const s = randomAlnum(5000);
  assert.equal(s.length, 5000);
  assert.match(s, /^[a-z0-9]+$/);
  assert.equal(new Set(s).size, 36);
});

test('credentials carry their kind, at least 32 bytes of secret, and parse only as that kind', () => {
  const m = newCredential('machine');
  const a = newCredential('api');
  assert.match(m.credential, /^nkm\./);
  assert.match(a.credential, /^nka\./);
  const secret = parseCredential(m.credential, 'machine')?.secret ?? '';
  assert.ok(Buffer.from(secret, 'base64url').length >= 32);
  assert.equal(parseCredential(m.credential, 'api'), null);
  assert.equal(parseCredential(a.credential, 'machine'), null);
  assert.ok(secretMatches(secret, m.hash));
  assert.equal(secretMatches(`${secret}x`, m.hash), false);
  assert.equal(secretMatches(secret, Buffer.alloc(3)), false, 'a hash of the wrong length never matches');
});

test('parsing never throws on anything presented', () => {
  fc.assert(
    fc.property(fc.anything(), (x) => {
      const t = parseToken(x);
      const c = parseCredential(x, 'machine');
      assert.ok(t === null || typeof t.id === 'string');
      assert.ok(c === null || typeof c.id === 'string');
    }),
  );
  for (const bad of ['ABCDEF.0123456789abcdef', 'abcdef.0123456789abcde', 'abcdef:0123456789abcdef', ' abcdef.0123456789abcdef', 'abcdef.0123456789abcdef\n']) {
    assert.equal(parseToken(bad), null, JSON.stringify(bad));
  }
  assert.equal(hashSecret('x').length, 32);
});
