/**
 * Backups of a real coordinator, through the real nkctl and the real
 * `nodekeeper-coordinator restore`: taken online, streamed to another directory (as to
 * another host), checked, restored into a fresh data dir, and served again with the
 * same CA, credentials, tokens and artifacts. Refusals: no or a read-only credential,
 * an existing output file, a non-empty data dir, and archives tampered with in every
 * way the manifest and the integrity check are there to catch; each changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { restore } from './harness/coordinator-install.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, type CoordinatorProc } from './harness/processes.ts';

/** POST /v1/backups with the given Authorization header (or none): status and JSON body. */
function postBackup(coord: CoordinatorProc, ca: string, auth: string | null, method = 'POST'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${coord.url}/v1/backups`, { method, ca, headers: auth === null ? {} : { authorization: auth } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sh = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

describe('nkctl backup create and nodekeeper-coordinator restore', { timeout: 240_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let restored: CoordinatorProc | undefined;
  let ca: string;
  let good: string;
  let token: string;
  let artifactSha: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-backup-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--liveness-grace', '600000']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    token = (await createToken(coord.nkctlConfig, 5)).token;
    await writeFile(path.join(dir, 'blob.tar.gz'), randomBytes(300_000));
    artifactSha = (JSON.parse(await nkctlOk(coord.nkctlConfig, ['artifact', 'push', path.join(dir, 'blob.tar.gz'), '--package', 'kubelet', '--version', '1.31.3', '-o', 'json'])) as { sha256: string }).sha256;
    await mkdir(path.join(dir, 'elsewhere'));
  });

  after(async () => {
    await restored?.stop();
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('backup create writes one checked archive; restore into a fresh dir serves the same CA, credentials, tokens and artifacts', async () => {
    good = path.join(dir, 'elsewhere', 'coord.tar.gz');
    const out = await nkctlOk(coord.nkctlConfig, ['backup', 'create', '-o', good]);
    assert.match(out, /backup written to .*coord\.tar\.gz/);
    assert.match(out, /store schema version \d+ \(integrity ok\)/);
    assert.deepEqual(readdirSync(path.join(dir, 'elsewhere')), ['coord.tar.gz'], 'no temporary file left beside it');
    assert.deepEqual(readdirSync(path.join(coord.dataDir, 'backups')), [], 'nothing left on the coordinator');
    const listing = sh('tar', ['-tzf', good], dir).trim().split('\n');
    assert.equal(listing[0], 'manifest.json', 'the manifest comes first');
    for (const p of ['state.db', 'pki/ca.crt', 'pki/ca.key', 'pki/server.key', 'admin.credential', `artifacts/sha256/${artifactSha}`]) assert.ok(listing.includes(p), `${p} in ${listing.join(' ')}`);

    const fresh = path.join(dir, 'restored', 'data');
    const r = restore(good, fresh);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /files checked \(sha256\), store integrity ok/);
    await coord.stop();
    restored = await startCoordinator(fresh, ['--liveness-grace', '600000', '--port', String(coord.port)]);
    assert.equal(restored.caHash, coord.caHash, 'the CA agents pinned is the same');
    // The old admin credential (in nkctl.yaml's token file, restored with the data) still works.
    const tokens = JSON.parse(await nkctlOk(restored.nkctlConfig, ['token', 'list', '-o', 'json'])) as { items: Array<{ id: string }> };
    assert.ok(tokens.items.some((t) => t.id === token.split('.')[0]), 'the bootstrap token survived');
    const arts = JSON.parse(await nkctlOk(restored.nkctlConfig, ['artifact', 'list', '-o', 'json'])) as { items: Array<{ sha256: string }> };
    assert.deepEqual(arts.items.map((a) => a.sha256), [artifactSha]);
    assert.ok(existsSync(path.join(fresh, 'artifacts', 'sha256', artifactSha)));
    await restored.stop();
    restored = undefined;
    coord = await startCoordinator(coord.dataDir, ['--liveness-grace', '600000', '--port', String(coord.port)]);
  });

  test('unauthenticated, bad, read-only credentials and wrong methods are refused with codes; nothing is made', async () => {
    const readOnly = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    const cases: Array<[string | null, string, number, string]> = [
      [null, 'POST', 401, 'NK_AUTH_CREDENTIAL_MISSING'],
      ['Bearer nka.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'POST', 401, 'NK_AUTH_CREDENTIAL_INVALID'],
      ['Basic YWRtaW46YWRtaW4=', 'POST', 401, 'NK_AUTH_CREDENTIAL_MISSING'],
      [`Bearer ${readOnly}`, 'POST', 403, 'NK_AUTH_FORBIDDEN'],
      [`Bearer ${readOnly}`, 'GET', 405, 'NK_HTTP_METHOD_NOT_ALLOWED'],
    ];
    for (const [auth, method, status, code] of cases) {
      const r = await postBackup(coord, ca, auth, method);
      assert.equal(r.status, status, `${method} with ${auth?.slice(0, 12)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, code);
    }
    assert.deepEqual(readdirSync(path.join(coord.dataDir, 'backups')), []);
    const ro = path.join(dir, 'ro.yaml');
    await writeFile(ro, (await readFile(coord.nkctlConfig, 'utf8')).replace(/tokenFile: .*/, `tokenFile: ${path.join(coord.dataDir, 'read-only.credential')}`));
    const viaNkctl = await nkctl(ro, ['backup', 'create', '-o', path.join(dir, 'elsewhere', 'ro.tar.gz')]);
    assert.equal(viaNkctl.code, 3, viaNkctl.stderr);
    assert.match(viaNkctl.stderr, /NK_AUTH_FORBIDDEN/);
    assert.deepEqual(readdirSync(path.join(dir, 'elsewhere')), ['coord.tar.gz']);
  });

  test('an existing output file is never overwritten', async () => {
    const r = await nkctl(coord.nkctlConfig, ['backup', 'create', '-o', good]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exists.*NK_CLI_USAGE/);
    assert.equal(restore(good, path.join(dir, 'check-unchanged')).status, 0, 'the file is still the good archive');
  });

  test('restore refuses a data dir that is not empty, and leaves it as it was', async () => {
    const busy = path.join(dir, 'busy');
    await mkdir(busy);
    await writeFile(path.join(busy, 'state.db'), 'mine');
    const r = restore(good, busy);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not empty .*NK_RESTORE_DATA_DIR_NOT_EMPTY/);
    assert.deepEqual(readdirSync(busy), ['state.db']);
    assert.equal(await readFile(path.join(busy, 'state.db'), 'utf8'), 'mine');
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.restore-')), [], 'no staging left');
  });

  test('tampered archives are refused before anything is written', async () => {
    const unpacked = path.join(dir, 'unpacked');
    await mkdir(unpacked);
    sh('tar', ['-xzf', good], unpacked);
    const manifest = JSON.parse(await readFile(path.join(unpacked, 'manifest.json'), 'utf8'));
    const files = ['manifest.json', ...manifest.files.map((f: { path: string }) => f.path)];
    let n = 0;
    /** Copies the good contents, lets `mutate` change the copy, packs `members` of it. */
    const variant = async (mutate: (d: string) => Promise<void> | void, members: string[] = files): Promise<string> => {
      const d = path.join(dir, `variant-${++n}`);
      sh('cp', ['-a', unpacked, d], dir);
      await mutate(d);
      const file = `${d}.tar.gz`;
      sh('tar', ['-czf', file, ...members], d);
      return file;
    };
    const rewriteManifest = async (d: string, edit: (m: any) => void) => {
      const m = JSON.parse(await readFile(path.join(d, 'manifest.json'), 'utf8'));
      edit(m);
      await writeFile(path.join(d, 'manifest.json'), JSON.stringify(m));
    };
    const sha = (f: string) => sh('sha256sum', [f], dir).split(' ')[0]!;
    const cases: Array<[string, string, RegExp]> = [
      ['a flipped byte in the store', await variant(async (d) => {
        const db = await readFile(path.join(d, 'state.db'));
        db.writeUInt8(db.readUInt8(db.length - 100) ^ 0xff, db.length - 100);
        await writeFile(path.join(d, 'state.db'), db);
      }), /NK_BACKUP_CHECKSUM_MISMATCH/],
      ['a file the manifest does not list', await variant((d) => writeFile(path.join(d, 'pki', 'extra.key'), 'x'), [...files, 'pki/extra.key']), /not listed in the manifest.*NK_BACKUP_ARCHIVE_INVALID|not a file a backup holds|NK_BACKUP_ARCHIVE_INVALID/],
      ['a path climbing out', await variant(async (d) => {
        await mkdir(path.join(d, 'x'));
        await writeFile(path.join(d, 'evil'), 'x');
      }, [...files, 'x/../evil']), /NK_BACKUP_ARCHIVE_INVALID/],
      ['a symlink in place of a key', await variant(async (d) => {
        await rm(path.join(d, 'pki', 'ca.key'));
        sh('ln', ['-s', '/etc/shadow', path.join(d, 'pki', 'ca.key')], d);
      }), /SymbolicLink.*NK_BACKUP_ARCHIVE_INVALID/],
      ['a listed file missing', await variant(() => {}, files.filter((f) => f !== 'pki/ca.crt')), /missing from the archive.*NK_BACKUP_ARCHIVE_INVALID/],
      ['no manifest', await variant(() => {}, files.slice(1)), /no manifest\.json.*NK_BACKUP_MANIFEST_INVALID/],
      ['a manifest of another kind', await variant((d) => rewriteManifest(d, (m) => (m.kind = 'Something'))), /NK_BACKUP_MANIFEST_INVALID/],
      ['a store that fails its integrity check (hashes recomputed)', await variant(async (d) => {
        const file = path.join(d, 'state.db');
        const db = await readFile(file);
        // Scribble over the second page (a b-tree page of the schema's tables).
        const pageSize = db.readUInt16BE(16) === 1 ? 65536 : db.readUInt16BE(16);
        db.fill(0x5a, pageSize + 8, pageSize * 2 - 8);
        await writeFile(file, db);
        await rewriteManifest(d, (m) => Object.assign(m.files.find((f: { path: string }) => f.path === 'state.db'), { sha256: sha(file), size: db.length }));
      }), /NK_BACKUP_INTEGRITY_FAILED/],
      ['a store from a newer coordinator', await variant(async (d) => {
        const file = path.join(d, 'state.db');
        const db = new Database(file);
        db.pragma('user_version = 999');
        db.close();
        const size = (await readFile(file)).length;
        await rewriteManifest(d, (m) => {
          m.schemaVersion = 999;
          Object.assign(m.files.find((f: { path: string }) => f.path === 'state.db'), { sha256: sha(file), size });
        });
      }), /schema version 999.*NK_BACKUP_SCHEMA_TOO_NEW/],
    ];
    await writeFile(path.join(dir, 'not-gzip.tar.gz'), 'hello, not an archive');
    cases.push(['not a gzip file', path.join(dir, 'not-gzip.tar.gz'), /NK_BACKUP_ARCHIVE_INVALID/]);
    for (const [what, file, want] of cases) {
      const target = path.join(dir, 'targets', String(++n));
      const r = restore(file, target);
      assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, want, what);
      assert.equal(existsSync(target), false, `${what}: nothing written`);
      assert.deepEqual(existsSync(path.join(dir, 'targets')) ? readdirSync(path.join(dir, 'targets')) : [], [], `${what}: no staging left`);
    }
  });
});
