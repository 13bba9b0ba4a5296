import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '@nodekeeper/common';
import { StoreHealth, asUnavailable, unavailableCode } from './store-health.ts';
import { openStore } from './db.ts';

const sqliteError = (code: string) => Object.assign(new Error(`boom ${code}`), { code });

test('outage codes are told apart from bugs and refusals', () => {
  assert.equal(unavailableCode(sqliteError('SQLITE_FULL')), 'SQLITE_FULL');
  assert.equal(unavailableCode(sqliteError('SQLITE_IOERR_WRITE')), 'SQLITE_IOERR_WRITE');
  assert.equal(unavailableCode(sqliteError('SQLITE_BUSY')), 'SQLITE_BUSY');
  assert.equal(unavailableCode(sqliteError('SQLITE_CONSTRAINT_UNIQUE')), null);
  assert.equal(unavailableCode(new AppError('NK_MACHINE_NOT_FOUND', 'x')), null);
  const e = asUnavailable(sqliteError('SQLITE_FULL'));
  assert.ok(e instanceof AppError && e.code === 'NK_STORE_UNAVAILABLE');
  assert.equal(unavailableCode(e), 'SQLITE_FULL');
  assert.equal(asUnavailable(e), e);
});

test('an outage is counted by op and code, backs off the controllers, and ends at the next committed write', () => {
  let now = 1_000;
  const counted: string[] = [];
  const health = new StoreHealth({ now: () => now, random: () => 0.999, onError: (op, code) => counted.push(`${op}/${code}`) });
  const recovered: number[] = [];
  health.onRecovered((o, at) => recovered.push(at - o.since));
  const store = openStore(':memory:', { observer: health });
  // A trigger stands in for the disk: every write to tokens fails with SQLITE_FULL's code.
  let full = true;
  const real = store.createToken.bind(store);
  store.createToken = (t) => health.run('api', () => store.transaction(() => {
    if (full) throw sqliteError('SQLITE_FULL');
    return real(t);
  }));
  assert.throws(() => store.createToken({ ttlMs: 1000, maxUses: 1, description: '' }), { code: 'NK_STORE_UNAVAILABLE' });
  assert.deepEqual(counted, ['api/SQLITE_FULL']);
  assert.equal(health.outage?.firstCode, 'SQLITE_FULL');
  assert.equal(store.listTokens().length, 0, 'nothing stored');
  assert.equal(health.retryDue(), true, 'the first retry is due at once');
  health.retrying();
  assert.equal(health.retryDue(), false);
  now += 1_000;
  assert.equal(health.retryDue(), true, 'about 1 s later');
  health.retrying();
  now += 1_000;
  assert.equal(health.retryDue(), false, 'then about 2 s');
  full = false;
  now += 5_000;
  store.createToken({ ttlMs: 1000, maxUses: 1, description: '' });
  assert.equal(health.outage, null);
  assert.deepEqual(recovered, [7_000]);
  assert.equal(health.retryDue(), true);
  store.close();
});
