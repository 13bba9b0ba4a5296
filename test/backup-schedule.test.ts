/**
 * Scheduled snapshots, kills, and upgrades, against real coordinator processes:
 *   - --backup-dir/--backup-interval/--backup-keep: snapshots appear, the oldest beyond
 *     keep are pruned, an operator's own files are never touched;
 *   - an unwritable --backup-dir is logged and counted, never fatal;
 *   - a coordinator killed -9 mid-snapshot, and nkctl killed mid-download, leave no
 *     file under a final name that is not a whole, checked archive; the leftovers are
 *     removed at the next start;
 *   - a store at an older schema is backed up before it is migrated, and that backup
 *     restores.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate, migrations, SCHEMA_VERSION } from '../coordinator/src/store/migrations.ts';
import { BIN, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { restore } from './harness/coordinator-install.ts';

const SNAPSHOT = /^nodekeeper-backup-\d{8}T\d{6}Z\.tar\.gz$/;

/** The coordinator's /metrics text. */
function metrics(coord: CoordinatorProc, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(`${coord.url}/metrics`, { ca }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

const counter = (text: string, reason: string, result: string): number =>
  Number(new RegExp(`nodekeeper_backups_total\\{reason="${reason}",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);

describe('scheduled snapshots, kills and upgrades', { timeout: 300_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc | undefined;
  const started: CoordinatorProc[] = [];
  const start = async (dataDir: string, args: string[]) => {
    const c = await startCoordinator(dataDir, args);
    started.push(c);
    return c;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-backup-sched-'));
  });

  after(async () => {
    for (const c of started) await c.stop('SIGKILL');
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('snapshots every interval; the newest --backup-keep stay; other files are left alone', async () => {
    const backups = path.join(dir, 'snapshots');
    await mkdir(backups);
    await writeFile(path.join(backups, 'notes.txt'), 'mine');
    await writeFile(path.join(backups, 'nodekeeper-backup-before-upgrade.tar.gz'), 'mine too');
    coord = await start(path.join(dir, 'sched'), ['--liveness-grace', '600000', '--backup-dir', backups, '--backup-interval', '1s', '--backup-keep', '2']);
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    await waitFor('four scheduled snapshots', async () => counter(await metrics(coord!, ca), 'scheduled', 'ok') >= 4, 60_000, 200);
    assert.match(await metrics(coord, ca), /nodekeeper_backup_last_success_timestamp_seconds [1-9]\d+/);
    await coord.stop(); // SIGTERM: a round in progress finishes first
    const names = readdirSync(backups).sort();
    const snaps = names.filter((n) => SNAPSHOT.test(n));
    assert.equal(snaps.length, 2, names.join(' '));
    assert.ok(names.includes('notes.txt') && names.includes('nodekeeper-backup-before-upgrade.tar.gz'), names.join(' '));
    assert.equal(names.length, 4, `nothing else: ${names.join(' ')}`);
    const r = restore(path.join(backups, snaps[1]!), path.join(dir, 'from-snapshot'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\(scheduled\)/);
  });

  test('an unwritable --backup-dir is logged and counted; the coordinator keeps serving and backing up on demand', async () => {
    await writeFile(path.join(dir, 'a-file'), 'x');
    coord = await start(path.join(dir, 'unwritable'), ['--liveness-grace', '600000', '--backup-dir', path.join(dir, 'a-file', 'backups'), '--backup-interval', '1s']);
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    await waitFor('two failed rounds counted', async () => counter(await metrics(coord!, ca), 'scheduled', 'failed') >= 2, 30_000, 200);
    assert.match(coord.log(), /scheduled backup failed; the next round retries/);
    assert.equal(coord.child.exitCode, null, 'still running');
    const out = path.join(dir, 'on-demand.tar.gz');
    await nkctlOk(coord.nkctlConfig, ['backup', 'create', '-o', out]);
    assert.ok(existsSync(out));
    await coord.stop();
    coord = undefined;
  });

  test('killed -9 mid-snapshot and mid-download: no file under a final name is partial; leftovers go at the next start', async () => {
    const backups = path.join(dir, 'kill-snapshots');
    const dataDir = path.join(dir, 'kill');
    const args = ['--liveness-grace', '600000', '--backup-dir', backups, '--backup-interval', '1s', '--backup-keep', '50'];
    coord = await start(dataDir, args);
    // A large incompressible artifact makes each archive take a while to write.
    await writeFile(path.join(dir, 'big.bin'), randomBytes(24 * 1024 * 1024));
    await nkctlOk(coord.nkctlConfig, ['artifact', 'push', path.join(dir, 'big.bin'), '--package', 'kubelet', '--version', '1.31.9']);
    for (let round = 0; round < 2; round++) {
      await waitFor('a snapshot being written', () => existsSync(backups) && readdirSync(backups).some((n) => /\.partial-[0-9a-f]{8}$/.test(n)), 60_000, 10);
      await coord.stop('SIGKILL');
      const left = readdirSync(path.join(dataDir, 'backups'));
      coord = await start(dataDir, [...args, '--port', String(coord.port)]);
      await waitFor('the leftovers removed at start', () => readdirSync(backups).every((n) => !n.includes('.partial-')) && readdirSync(path.join(dataDir, 'backups')).every((n) => !left.includes(n) || !n.startsWith('.')), 20_000);
    }
    await coord.stop('SIGKILL');
    const finals = readdirSync(backups).filter((n) => SNAPSHOT.test(n));
    for (const n of finals) {
      const r = restore(path.join(backups, n), path.join(dir, 'kill-check', n));
      assert.equal(r.status, 0, `${n} is whole: ${r.stderr}`);
    }

    // nkctl killed while it downloads: the final name never appears.
    coord = await start(dataDir, ['--liveness-grace', '600000', '--port', String(coord.port)]);
    const target = path.join(dir, 'download', 'b.tar.gz');
    await mkdir(path.dirname(target));
    const child = spawn(process.execPath, [BIN.nkctl, 'backup', 'create', '-o', target], { env: { ...process.env, NKCTL_CONFIG: coord.nkctlConfig }, stdio: 'ignore' });
    const gone = new Promise((r) => child.once('exit', r));
    await waitFor('the download under way', () => readdirSync(path.dirname(target)).some((n) => n.startsWith('.b.tar.gz.partial-')), 60_000, 5);
    child.kill('SIGKILL');
    await gone;
    assert.equal(existsSync(target), false, 'no file under the final name');
    await waitFor('the coordinator removed its copy of the abandoned download', () => readdirSync(path.join(dataDir, 'backups')).length === 0, 30_000);
    const after = await nkctlOk(coord.nkctlConfig, ['backup', 'create', '-o', target]);
    assert.match(after, /backup written/, 'the next backup is not blocked by the abandoned one');
    await coord.stop();
    coord = undefined;
  });

  test('a store at an older schema is backed up before it is migrated; the backup restores at the old schema', async () => {
    const dataDir = path.join(dir, 'upgrade');
    await mkdir(dataDir, { recursive: true });
    const db = new Database(path.join(dataDir, 'state.db'));
    migrate(db, migrations.slice(0, SCHEMA_VERSION - 1));
    db.prepare("INSERT INTO events (at, object, type, reason, message) VALUES (1, 'x/y', 'Normal', 'Old', 'from the old version')").run();
    db.close();
    coord = await start(dataDir, ['--liveness-grace', '600000']);
    const made = readdirSync(path.join(dataDir, 'backups'));
    const pre = made.filter((n) => new RegExp(`^pre-migration-${SCHEMA_VERSION - 1}-${SCHEMA_VERSION}-\\d{8}T\\d{6}Z\\.tar\\.gz$`).test(n));
    assert.equal(pre.length, 1, made.join(' '));
    assert.match(coord.log(), /backup taken before migrating the store/);
    await coord.stop();
    coord = undefined;
    const target = path.join(dir, 'upgrade-restored');
    const r = restore(path.join(dataDir, 'backups', pre[0]!), target);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`store schema version ${SCHEMA_VERSION - 1}\\b`));
    const back = new Database(path.join(target, 'state.db'), { readonly: true });
    try {
      assert.equal(back.pragma('user_version', { simple: true }), SCHEMA_VERSION - 1);
      assert.equal((back.prepare("SELECT message FROM events WHERE reason = 'Old'").get() as { message: string }).message, 'from the old version');
    } finally {
      back.close();
    }
  });
});
