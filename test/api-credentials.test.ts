/**
 * API credentials with the real nkctl against a real coordinator: created with a role,
 * listed without their secrets, revoked and then refused at once; a read-only
 * credential reads but writes nothing; the last admin credential cannot be revoked (that
 * would lock every operator out).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nkctl, startCoordinator, type CoordinatorProc } from './harness/processes.ts';

describe('nkctl credential', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  const as = (credential: string, args: string[]) => nkctl(coord.nkctlConfig, ['--token', credential, ...args]);
  const ok = async (args: string[]) => {
    const r = await nkctl(coord.nkctlConfig, args);
    assert.equal(r.code, 0, `nkctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-api-creds-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--liveness-grace', '600000']);
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('create, list, use and revoke; revoked is refused at once', async () => {
    const ro = JSON.parse(await ok(['credential', 'create', '--role', 'read-only', '--description', 'dashboards', '-o', 'json']));
    assert.equal(ro.role, 'read-only');
    assert.match(ro.credential, /^nka\./);
    assert.equal(ro.credential.split('.')[1], ro.id);

    // It reads, and writes nothing.
    assert.equal((await as(ro.credential, ['get', 'machines'])).code, 0);
    const denied = await as(ro.credential, ['token', 'create']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /NK_AUTH_FORBIDDEN/);
    const deniedCred = await as(ro.credential, ['credential', 'create', '--role', 'admin']);
    assert.match(deniedCred.stderr, /NK_AUTH_FORBIDDEN/);
    assert.match((await as(ro.credential, ['credential', 'list'])).stderr, /NK_AUTH_FORBIDDEN/, 'credentials are an admin matter');

    const list = JSON.parse(await ok(['credential', 'list', '-o', 'json']));
    assert.equal(list.kind, 'ApiCredentialList');
    const mine = list.items.find((c: any) => c.id === ro.id);
    assert.deepEqual({ role: mine.role, description: mine.description, revoked: mine.revoked }, { role: 'read-only', description: 'dashboards', revoked: false });
    assert.ok(!JSON.stringify(list).includes(ro.credential.split('.')[2]), 'no secret is listed');
    assert.ok(list.items.filter((c: any) => c.role === 'admin').length >= 1, 'the first-start admin credential is listed');
    const table = await ok(['credential', 'list']);
    assert.match(table, /ID\s+ROLE\s+DESCRIPTION/);
    assert.match(table, new RegExp(`${ro.id}\\s+read-only\\s+dashboards`));

    assert.match(await ok(['credential', 'revoke', ro.id]), new RegExp(`apicredential/${ro.id} revoked`));
    const refused = await as(ro.credential, ['get', 'machines']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /NK_AUTH_CREDENTIAL_INVALID/);
    const after = JSON.parse(await ok(['credential', 'list', '-o', 'json']));
    assert.equal(after.items.find((c: any) => c.id === ro.id).revoked, true, 'kept, marked revoked (the audit trail names it)');

    const unknown = await nkctl(coord.nkctlConfig, ['credential', 'revoke', '0123456789abcdef']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /NK_API_CREDENTIAL_NOT_FOUND/);
  });

  test('a new admin credential works; the last admin credential cannot be revoked', async () => {
    const admin = JSON.parse(await ok(['credential', 'create', '--role', 'admin', '--description', 'second operator', '-o', 'json']));
    assert.equal((await as(admin.credential, ['token', 'create'])).code, 0);
    const list = JSON.parse(await ok(['credential', 'list', '-o', 'json']));
    const first = list.items.find((c: any) => c.role === 'admin' && c.id !== admin.id && !c.revoked);
    // The second admin revokes the first: allowed, one admin remains.
    assert.equal((await as(admin.credential, ['credential', 'revoke', first.id])).code, 0);
    assert.match((await nkctl(coord.nkctlConfig, ['get', 'machines'])).stderr, /NK_AUTH_CREDENTIAL_INVALID/, 'the first admin credential is refused now');
    const last = await as(admin.credential, ['credential', 'revoke', admin.id]);
    assert.notEqual(last.code, 0);
    assert.match(last.stderr, /NK_API_CREDENTIAL_LAST_ADMIN/);
    assert.equal((await as(admin.credential, ['get', 'machines'])).code, 0, 'still works');
  });
});
