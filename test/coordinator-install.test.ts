/**
 * install-coordinator from the REAL coordinator tarball (scripts/release, cached by
 * test/harness/release.ts), on what stands for a machine with no checkout: only the
 * tarball and SHA256SUMS copied into an empty dir, everything run under
 * `env -i PATH=/usr/bin:/bin`. Bad usage fails before touching anything, --dry-run
 * changes nothing, --root stages the exact layout (versions/<v>, current, the unit, the
 * config) with nothing pointing back into the checkout; the installed coordinator,
 * started as the unit starts it, creates its CA and admin credential, answers the
 * installed nkctl at the advertised URL, takes a backup its own `restore` checks (the
 * bundled tar and VERSION), and finds its CRD file. A second version (the same tarball,
 * only VERSION changed, repacked as scripts/release packs) flips `current` and keeps
 * `previous`. Tampered tarballs, sums, signatures and keys are refused, installing nothing;
 * an https --from is downloaded with curl, trusting --ca-file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { copyFile, cp, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sha256File, sha256sums, signSums } from '../scripts/lib/release-archive.ts';
import { listeningLine, REPO, spawnLogged, type Proc } from './harness/processes.ts';
import { coordinatorRelease, repackCoordinator, runCommand, serveReleaseOverHttps, showResult, type CoordinatorRelease, type Result } from './harness/release.ts';
import { freePort } from './harness/supervised-node.ts';

const EMPTY_ENV = { PATH: '/usr/bin:/bin' };

/** Every path under `dir` (not following links). */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

describe('install-coordinator from the real release tarball, with no checkout', { timeout: 300_000 }, () => {
  let rel: CoordinatorRelease;
  let dir: string;
  /** The empty machine: the tarball, SHA256SUMS, and the tarball unpacked in x/. */
  let bare: string;
  let name: string;
  let proc: Proc | undefined;
  const install = (args: string[], installer = path.join(bare, 'x/install-coordinator')): Promise<Result> =>
    runCommand(installer, args, { env: EMPTY_ENV, cwd: bare, timeoutMs: 120_000 });

  before(async () => {
    rel = await coordinatorRelease();
    name = path.basename(rel.tarball);
    dir = await mkdtemp(path.join(tmpdir(), 'nk-coord-install-'));
    bare = path.join(dir, 'bare');
    await mkdir(path.join(bare, 'x'), { recursive: true });
    await copyFile(rel.tarball, path.join(bare, name));
    await copyFile(rel.sums, path.join(bare, 'SHA256SUMS'));
    const untar = await runCommand('tar', ['-xzf', path.join(bare, name), '-C', path.join(bare, 'x')]);
    assert.equal(untar.code, 0, showResult(untar));
  });

  after(async () => {
    await proc?.stop();
    if (dir !== undefined && process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the tarball ships the installer and the unit, as in the checkout', async () => {
    assert.equal(await readFile(path.join(bare, 'x/install-coordinator'), 'utf8'), await readFile(path.join(REPO, 'scripts/install-coordinator'), 'utf8'));
    assert.ok(statSync(path.join(bare, 'x/install-coordinator')).mode & 0o100, 'install-coordinator is executable');
    assert.equal(await readFile(path.join(bare, 'x/systemd/nodekeeper-coordinator.service'), 'utf8'), await readFile(path.join(REPO, 'coordinator/systemd/nodekeeper-coordinator.service'), 'utf8'));
  });

  test('bad usage fails with exit 2 before anything is created', async () => {
    const root = path.join(dir, 'bad');
    const adv = ['--advertise-url', 'https://nk.example:7443'];
    const cases: Array<[string[], RegExp]> = [
      [['--root', root], /--advertise-url is required/],
      [['--root', root, '--advertise-url', 'http://nk.example:7443'], /must be https:\/\/NAME/],
      [['--root', root, ...adv, '--listen', 'nowhere'], /--listen must be HOST:PORT/],
      [['--root', root, ...adv, '--backup-keep', '3'], /need --backup-dir/],
      [['--root', root, ...adv, '--backup-dir', '/var/lib/nodekeeper-coordinator/b'], /outside the data dir/],
      [['--root', root, ...adv, '--frobnicate'], /unknown option/],
      [['--root', root, ...adv, '--from', `http://127.0.0.1:1/${name}`], /--from must be a file or an https:\/\/ URL/],
      [['--root', root, ...adv, '--from', path.join(bare, 'SHA256SUMS')], /--from must name a nodekeeper-coordinator-<version>-linux-<arch>\.tar\.gz/],
      [['--root', root, ...adv, '--from', path.join(bare, 'missing.tar.gz')], /cannot read --from/],
      [['--root', root, ...adv, '--signature', path.join(bare, 'SHA256SUMS')], /--signature needs --public-key/],
    ];
    for (const [args, want] of cases) {
      const r = await install(args);
      assert.equal(r.code, 2, `${args.join(' ')}\n${showResult(r)}`);
      assert.match(r.stderr, want);
    }
    assert.equal(existsSync(root), false);
  });

  test('--dry-run prints the plan and changes nothing', async () => {
    const root = path.join(dir, 'dry');
    const r = await install(['--root', root, '--dry-run', '--sha256sums', path.join(bare, 'SHA256SUMS'), '--advertise-url', 'https://nk.example:7443', '--backup-dir', '/var/backups/nodekeeper']);
    assert.equal(r.code, 0, showResult(r));
    assert.match(r.stdout, new RegExp(`check its sha256 against ${path.join(bare, 'SHA256SUMS').replace(/[.+]/g, '\\$&')}`));
    assert.match(r.stdout, /advertiseUrl: "https:\/\/nk\.example:7443"/);
    assert.match(r.stdout, /ReadWritePaths=\/var\/backups\/nodekeeper/);
    assert.equal(existsSync(root), false);
  });

  test('verified, staged with --root, nothing pointing into the checkout; the installed coordinator and nkctl work', async () => {
    const root = path.join(bare, 'root');
    const port = await freePort();
    const advertise = `https://127.0.0.1:${port}`;
    const r = await install(['--sha256sums', path.join(bare, 'SHA256SUMS'), '--root', root, '--advertise-url', advertise, '--listen', `127.0.0.1:${port}`, '--backup-dir', '/var/backups/nodekeeper', '--backup-keep', '3']);
    assert.equal(r.code, 0, showResult(r));
    assert.match(r.stderr, new RegExp(`sha256 of ${name.replace(/\./g, '\\.')} matches SHA256SUMS`));
    const opt = path.join(root, 'opt/nodekeeper-coordinator');
    assert.equal(readlinkSync(path.join(opt, 'current')), `versions/${rel.version}`);
    assert.equal(existsSync(path.join(opt, 'previous')), false);
    // Exactly the release's entries (not the tarball or sums lying beside it).
    assert.deepEqual(readdirSync(path.join(opt, 'versions', rel.version)).sort(), ['VERSION', 'bin', 'install-coordinator', 'lib', 'node', 'systemd']);
    assert.equal(readlinkSync(path.join(root, 'usr/local/bin/nkctl')), '/opt/nodekeeper-coordinator/current/bin/nkctl');
    const unit = await readFile(path.join(root, 'etc/systemd/system/nodekeeper-coordinator.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    assert.equal(execStart, '/opt/nodekeeper-coordinator/current/bin/nodekeeper-coordinator --config /etc/nodekeeper-coordinator/coordinator.yaml --data-dir /var/lib/nodekeeper-coordinator');
    assert.match(await readFile(path.join(root, 'etc/systemd/system/nodekeeper-coordinator.service.d/backup-dir.conf'), 'utf8'), /^ReadWritePaths=\/var\/backups\/nodekeeper$/m);
    assert.equal(statSync(path.join(root, 'var/lib/nodekeeper-coordinator')).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(root, 'etc/nodekeeper-coordinator/coordinator.yaml')).mode & 0o777, 0o640);
    for (const p of await walk(root)) {
      const st = await lstat(p);
      if (st.isSymbolicLink()) {
        const target = await readlink(p);
        const resolved = target.startsWith('/') ? path.join(root, target) : path.resolve(path.dirname(p), target);
        assert.ok(resolved.startsWith(`${root}/`), `${p} -> ${target} leaves the root`);
      } else if (st.isFile()) {
        assert.ok(!(await readFile(p, 'latin1')).includes(REPO), `${p} names the checkout ${REPO}`);
      }
    }

    // The unit's command, with the staging root prefixed to its paths, in an empty environment.
    const argv = execStart.split(' ').map((a) => (a.startsWith('/') ? path.join(root, a) : a));
    const configText = await readFile(path.join(root, 'etc/nodekeeper-coordinator/coordinator.yaml'), 'utf8');
    assert.match(configText, /backupDir: "\/var\/backups\/nodekeeper"/);
    // The backup dir is the host's path in the config; in the staged run it must be inside the root.
    argv.push('--backup-dir', path.join(root, 'var/backups/nodekeeper'));
    proc = spawnLogged('/usr/bin/env', ['-i', 'PATH=/usr/bin:/bin', ...argv], path.join(dir, 'staged.log'));
    const line = await listeningLine(proc);
    assert.equal(line.listening, advertise);
    const data = path.join(root, 'var/lib/nodekeeper-coordinator');
    for (const f of ['pki/ca.crt', 'pki/ca.key', 'admin.credential', 'nkctl.yaml']) assert.ok(existsSync(path.join(data, f)), `${f} created at first start`);
    assert.equal(new X509Certificate(await readFile(path.join(data, 'pki/server.crt'))).checkIP('127.0.0.1'), '127.0.0.1');

    const bin = path.join(opt, 'current/bin');
    const nk = (...args: string[]) => runCommand(path.join(bin, 'nkctl'), ['--config', path.join(data, 'nkctl.yaml'), ...args], { env: EMPTY_ENV, cwd: '/' });
    const token = await nk('token', 'create', '--uses', '1', '--ttl', '10m');
    assert.equal(token.code, 0, showResult(token));
    assert.match(token.stdout, new RegExp(`--server ${advertise.replace(/\./g, '\\.')} --token \\S+ --discovery-ca-hash sha256:[0-9a-f]{64}`));
    const version = await nk('version');
    assert.equal(version.stdout, `nkctl ${rel.version} (API nodekeeper.io/v1alpha1)\n`, showResult(version));

    // A backup (the bundled tar), checked by the installed coordinator's own restore,
    // which reads the version the serving coordinator stamped in it from VERSION.
    const backup = await nk('backup', 'create', '-o', path.join(dir, 'b.tar.gz'));
    assert.equal(backup.code, 0, showResult(backup));
    assert.match(backup.stdout, /integrity ok/);
    const restored = await runCommand(path.join(bin, 'nodekeeper-coordinator'), ['restore', '--from', path.join(dir, 'b.tar.gz'), '--data-dir', path.join(dir, 'restored')], { env: EMPTY_ENV, cwd: '/' });
    assert.equal(restored.code, 0, showResult(restored));
    assert.match(restored.stdout, new RegExp(`by coordinator ${rel.version.replace(/\./g, '\\.')} \\(manual\\)`));
    assert.ok(existsSync(path.join(dir, 'restored/pki/ca.key')));
    await proc.stop();
    proc = undefined;

    // The CRDs of `nkctl host install` are found beside the bundle: the first apply names
    // the first CRD of lib/crds.yaml (a missing file would fail reading it, before any request).
    const kubeconfig = path.join(dir, 'host.kubeconfig');
    const caData = Buffer.from(await readFile(path.join(data, 'pki/ca.crt'))).toString('base64');
    await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\nclusters: [{name: h, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: ${caData}}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: h, user: u}}]\ncurrent-context: c\n`);
    const firstCrd = /^\s*name:\s*(\S+\.nodekeeper\.io)\s*$/m.exec(await readFile(path.join(bin, '../lib/crds.yaml'), 'utf8'))?.[1];
    assert.ok(firstCrd !== undefined);
    const host = await runCommand(path.join(bin, 'nkctl'), ['host', 'install', '--kubeconfig', kubeconfig], { env: EMPTY_ENV, cwd: '/' });
    assert.notEqual(host.code, 0, showResult(host));
    assert.match(host.stderr, new RegExp(`apply CustomResourceDefinition ${firstCrd.replace(/\./g, '\\.')}`), showResult(host));
    assert.doesNotMatch(host.stderr, /ENOENT/);

    // The next version: the same tarball with only VERSION changed, packed as scripts/release packs.
    const next = await repackCoordinator('0.99.0', path.join(dir, 'next'));
    const up = await install(['--from', next.tarball, '--root', root]);
    assert.equal(up.code, 0, showResult(up));
    assert.equal(readlinkSync(path.join(opt, 'current')), 'versions/0.99.0');
    assert.equal(readlinkSync(path.join(opt, 'previous')), `versions/${rel.version}`);
    assert.deepEqual(readdirSync(path.join(opt, 'versions')).sort(), [rel.version, '0.99.0'].sort(), 'no staging left');
    assert.equal(await readFile(path.join(root, 'etc/nodekeeper-coordinator/coordinator.yaml'), 'utf8'), configText, 'the config is kept without --advertise-url');
    assert.ok(existsSync(path.join(data, 'admin.credential')), 'the data dir is kept');
    const upVersion = await nk('version');
    assert.match(upVersion.stdout, /^nkctl 0\.99\.0 /, showResult(upVersion));
  });

  test('refuses a tampered tarball, tampered sums, a wrong key and unlisted sums, installing nothing', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const sums = await readFile(path.join(bare, 'SHA256SUMS'));
    const signed = signSums(sums, privateKey);
    const pub = path.join(dir, 'release.pub');
    await writeFile(pub, signed.publicKeyPem);
    const kit = async (d: string) => {
      const k = path.join(dir, d);
      await mkdir(k);
      await copyFile(path.join(bare, name), path.join(k, name));
      await writeFile(path.join(k, 'SHA256SUMS'), sums);
      await writeFile(path.join(k, 'SHA256SUMS.sig'), signed.signature);
      return k;
    };
    const run = (k: string, root: string, key = pub) => install(['--from', path.join(k, name), '--public-key', key, '--root', path.join(dir, root), '--advertise-url', 'https://nk.example:7443']);

    const good = await kit('good');
    const ok = await run(good, 'root-good');
    assert.equal(ok.code, 0, showResult(ok));
    assert.match(ok.stderr, /SHA256SUMS signature good/);
    assert.equal(readlinkSync(path.join(dir, 'root-good/opt/nodekeeper-coordinator/current')), `versions/${rel.version}`);

    // A flipped byte in the tarball: its sum no longer matches.
    const t1 = await kit('tampered-tarball');
    const fh = await open(path.join(t1, name), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 4096);
    await fh.write(Buffer.from([b[0]! ^ 0xff]), 0, 1, 4096);
    await fh.close();
    const r1 = await run(t1, 'root-t1');
    assert.equal(r1.code, 1, showResult(r1));
    assert.match(r1.stderr, new RegExp(`REFUSED: ${name.replace(/\./g, '\\.')} has sha256 [0-9a-f]{64} but .* says`));

    // The tampered tarball with SHA256SUMS rewritten to match it: the signature catches it.
    const t2 = path.join(dir, 'tampered-sums');
    await cp(t1, t2, { recursive: true });
    await writeFile(path.join(t2, 'SHA256SUMS'), sha256sums([{ name, sha256: await sha256File(path.join(t2, name)) }]));
    const r2 = await run(t2, 'root-t2');
    assert.equal(r2.code, 1, showResult(r2));
    assert.match(r2.stderr, /REFUSED: the signature .* does not match/);

    // Untouched files, checked with another key.
    const other = path.join(dir, 'other.pub');
    await writeFile(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const r3 = await run(good, 'root-t3', other);
    assert.equal(r3.code, 1, showResult(r3));
    assert.match(r3.stderr, /REFUSED: the signature/);

    // Sums that do not list the tarball.
    const t4 = await kit('unlisted');
    await writeFile(path.join(t4, 'SHA256SUMS'), sums.toString('utf8').split('\n').filter((l) => !l.endsWith(name)).join('\n'));
    const r4 = await install(['--from', path.join(t4, name), '--root', path.join(dir, 'root-t4'), '--advertise-url', 'https://nk.example:7443']);
    assert.equal(r4.code, 1, showResult(r4));
    assert.match(r4.stderr, /REFUSED: .*SHA256SUMS has no entry for/);

    for (const root of ['root-t1', 'root-t2', 'root-t3', 'root-t4']) assert.equal(existsSync(path.join(dir, root)), false, `${root}: a refused install must create nothing`);
  });

  test('installs from an https URL with --ca-file; refuses an untrusted server, installing nothing', async (t) => {
    const srv = await serveReleaseOverHttps(bare, path.join(dir, 'tls'), rel.version);
    if (srv === null) {
      t.skip('needs /usr/bin/openssl (test certificate) and /usr/bin/curl');
      return;
    }
    const { requested } = srv;
    try {
      const url = `${srv.base}/${name}`;
      const args = (root: string) => ['--from', url, '--root', path.join(dir, root), '--advertise-url', 'https://nk.example:7443'];
      const ok = await install([...args('root-https'), '--ca-file', srv.caFile]);
      assert.equal(ok.code, 0, showResult(ok));
      assert.deepEqual(requested, [name, 'SHA256SUMS'], 'the sums are looked up beside the tarball');
      assert.equal(readlinkSync(path.join(dir, 'root-https/opt/nodekeeper-coordinator/current')), `versions/${rel.version}`);

      const untrusted = await install(args('root-untrusted'));
      assert.equal(untrusted.code, 1, showResult(untrusted));
      assert.match(untrusted.stderr, /cannot download https:\/\/127\.0\.0\.1/);
      assert.equal(existsSync(path.join(dir, 'root-untrusted')), false);
    } finally {
      await srv.close();
    }
  });
});
