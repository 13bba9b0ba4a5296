import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SourceLimiter } from './source-limiter.ts';
import { NonceBook, NONCE_TTL_MS } from '../server/enroll-nonces.ts';

test('an address is blocked only after its burst of failures, then allowed one per refill', () => {
  const l = new SourceLimiter({ perSecond: 0.5, burst: 3, maxSources: 10 });
  for (let i = 0; i < 3; i++) {
    assert.equal(l.retryAfterS('a', 0), 0);
    l.failed('a', 0);
  }
  assert.equal(l.retryAfterS('a', 0), 0, 'the burst itself is allowed');
  l.failed('a', 0);
  assert.equal(l.retryAfterS('a', 0), 2);
  assert.equal(l.retryAfterS('b', 0), 0, 'another address is not affected');
  assert.equal(l.retryAfterS('a', 2000), 0, 'allowed again after the refill');
});

test('memory is bounded: the stalest address is forgotten first', () => {
  fc.assert(
    fc.property(fc.array(fc.ipV4(), { maxLength: 300 }), (addrs) => {
      const l = new SourceLimiter({ perSecond: 1, burst: 1, maxSources: 50 });
      addrs.forEach((a, i) => l.failed(a, i));
      assert.ok(l.size <= 50);
    }),
  );
});

test('a nonce is single use, bound to its machine, and expires', () => {
  const book = new NonceBook();
  const n = book.issue('node-a', 0);
  assert.match(n, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(book.take(n, 'node-b', 1), false, 'for another machine');
  assert.equal(book.take(n, 'node-a', 1), false, 'a failed take spends it too');
  const m = book.issue('node-a', 0);
  assert.equal(book.take(m, 'node-a', NONCE_TTL_MS), false, 'expired');
  const k = book.issue('node-a', 0);
  assert.equal(book.take(k, 'node-a', 1), true);
  assert.equal(book.take(k, 'node-a', 2), false, 'used');
});
