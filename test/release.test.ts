/**
 * scripts/release and the agent tarball's install-agent, for real: the tarballs' layout,
 * a running coordinator from its tarball, byte-identical rebuilds, the arm64 build, the
 * ed25519 signature, refusals of a tampered tarball, tampered sums and a wrong key (with
 * nothing installed), an install with nothing but the tarball and its sums in an empty
 * environment, an upgrade that keeps `previous`, and an install over https.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, cp, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { agentRelease, AGENT_PKG_REL, buildRelease, runCommand, serveReleaseOverHttps, showResult, type AgentRelease } from './harness/release.ts';
import { REPO } from './harness/processes.ts';

const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const EXEC_START = '/var/lib/nodekeeper/packages/nodekeeper-agent/current/bin/nodekeeper-agent --config /etc/nodekeeper/agent.yaml';
const CA_HASH = `sha256:${'ab'.repeat(32)}`;
const EMPTY_ENV = { PATH: '/usr/bin:/bin' };

/** `tar tzvf`: name, owner and time of each entry. */
async function listing(tarball: string): Promise<Array<{ name: string; owner: string; time: string; mode: string }>> {
  const r = await runCommand('tar', ['--list', '--verbose', '--numeric-owner', '--gzip', '--file', tarball], { env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } });
  assert.equal(r.code, 0, showResult(r));
  return r.stdout.trim().split('\n').map((line) => {
    const [mode, owner, , date, time, ...rest] = line.split(/\s+/);
    return { mode: mode!, owner: owner!, time: `${date} ${time}`, name: rest.join(' ') };
  });
}

async function untar(tarball: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const r = await runCommand('tar', ['-xzf', tarball, '-C', dest]);
  assert.equal(r.code, 0, showResult(r));
}

/** The ELF e_machine of a file (0x3e x86-64, 0xb7 aarch64). */
async function elfMachine(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(20);
    await fh.read(head, 0, 20, 0);
    assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF', `${file} is not ELF`);
    return head.readUInt16LE(18);
  } finally {
    await fh.close();
  }
}

/** Every file under `dir` (not following links). */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

const sha256Line = (sums: string, name: string) => sums.split('\n').find((l) => l.endsWith(`  ${name}`));

describe('release tarballs and install-agent', { timeout: 900_000 }, () => {
  let rel: AgentRelease;
  let dir: string;
  const agentName = `nodekeeper-agent-${VERSION}-linux-x64.tar.gz`;

  before(async () => {
    rel = await agentRelease();
    dir = await mkdtemp(path.join(tmpdir(), 'nk-release-'));
  });

  after(async () => {
    if (dir !== undefined && process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the agent tarball has the shared layout, root-owned with one timestamp and no top-level dir', async () => {
    assert.equal(rel.version, VERSION);
    const entries = await listing(rel.agentTarball);
    const units = (await readdir(path.join(REPO, 'agent/systemd'))).sort().map((u) => `systemd/${u}`);
    // lib/chunks/: the code the agent imports only when used (installs, hosts without os-release).
    const chunks = entries.map((e) => e.name).filter((n) => n.startsWith('lib/chunks/') && n !== 'lib/chunks/');
    assert.ok(chunks.length > 0 && chunks.every((n) => /^lib\/chunks\/[\w.-]+\.mjs$/.test(n)), chunks.join(' '));
    assert.deepEqual(
      entries.map((e) => e.name).sort(),
      ['VERSION', 'bin/', 'bin/nodekeeper-agent', 'install-agent', 'lib/', 'lib/nodekeeper-agent.mjs', 'lib/chunks/', ...chunks, 'node/', 'node/LICENSE', 'node/bin/', 'node/bin/node', 'systemd/', ...units].sort(),
    );
    for (const e of entries) {
      assert.equal(e.owner, '0/0', e.name);
      assert.equal(e.time, entries[0]!.time, `${e.name}: every entry has the release's timestamp`);
      assert.match(e.mode, /^(-rw-r--r--|-rwxr-xr-x|drwxr-xr-x)$/, e.name);
    }
    const x = path.join(dir, 'layout');
    await untar(rel.agentTarball, x);
    assert.equal(await readFile(path.join(x, 'VERSION'), 'utf8'), `${VERSION}\n`);
    const launcher = await readFile(path.join(x, 'bin/nodekeeper-agent'), 'utf8');
    assert.match(launcher, /^#!\/bin\/sh\n/);
    assert.match(launcher, /\nexport NK_AGENT_INSTALL_DIR\n/);
    assert.match(launcher, /\nexec "\$here\/\.\.\/node\/bin\/node" --max-old-space-size=160 --max-semi-space-size=1 --lite-mode "\$here\/\.\.\/lib\/nodekeeper-agent\.mjs" "\$@"\n/);
    const unit = await readFile(path.join(x, 'systemd/nodekeeper-agent.service'), 'utf8');
    assert.equal(unit, await readFile(path.join(REPO, 'agent/systemd/nodekeeper-agent.service'), 'utf8'));
    assert.equal(/^ExecStart=(.*)$/m.exec(unit)?.[1], EXEC_START);
    assert.equal(await readFile(path.join(x, 'install-agent'), 'utf8'), await readFile(path.join(REPO, 'scripts/install-agent'), 'utf8'));
    assert.equal(await elfMachine(path.join(x, 'node/bin/node')), 0x3e);
    const bundle = await readFile(path.join(x, 'lib/nodekeeper-agent.mjs'), 'utf8');
    assert.ok(!bundle.includes(REPO), 'the bundle names the checkout it was built in');
    // One non-ASCII byte and Node keeps the whole source as a two-byte string (scripts/release.ts).
    assert.ok(/^[\x00-\x7f]*$/.test(bundle), 'the bundle is not pure ASCII');
    const help = await runCommand(path.join(x, 'bin/nodekeeper-agent'), ['--help'], { env: EMPTY_ENV });
    assert.equal(help.code, 0, showResult(help));
    assert.match(help.stdout, /^Usage: nodekeeper-agent/);
  });

  test('the coordinator tarball runs the coordinator (SQLite addon included) and nkctl from its own Node', async () => {
    const names = (await listing(rel.coordinatorTarball)).map((e) => e.name);
    for (const n of ['VERSION', 'bin/nodekeeper-coordinator', 'bin/nkctl', 'node/bin/node', 'lib/nodekeeper-coordinator.mjs', 'lib/nkctl.mjs', 'lib/better-sqlite3-linux-x64.node', 'lib/crds.yaml', 'lib/ui/index.html']) assert.ok(names.includes(n), `missing ${n}: ${names.join(' ')}`);
    const x = path.join(dir, 'coordinator');
    await untar(rel.coordinatorTarball, x);
    const help = await runCommand(path.join(x, 'bin/nkctl'), ['--help'], { env: EMPTY_ENV });
    assert.equal(help.code, 0, showResult(help));
    assert.match(help.stdout, /^Usage: nkctl/);
    // The coordinator runs with the young generation bounded (scripts/lib/node-flags.ts); its gateway workers inherit the flags.
    assert.match(await readFile(path.join(x, 'bin/nodekeeper-coordinator'), 'utf8'), /\nexec "\$here\/\.\.\/node\/bin\/node" --max-semi-space-size=8 "\$here\/\.\.\/lib\/nodekeeper-coordinator\.mjs" "\$@"\n/);
    const coord = spawn(path.join(x, 'bin/nodekeeper-coordinator'), ['--data-dir', path.join(dir, 'coordinator-data'), '--host', '127.0.0.1', '--port', '0'], { env: EMPTY_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    coord.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    coord.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise((resolve) => coord.once('exit', resolve));
    try {
      const deadline = Date.now() + 60_000;
      while (!/"listening":"https:\/\/[^"]+"/.test(out)) {
        assert.ok(coord.exitCode === null, `the coordinator exited:\n${out}`);
        assert.ok(Date.now() < deadline, `the coordinator did not listen:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(existsSync(path.join(dir, 'coordinator-data/state.db')), 'SQLite store created');
      // The installed coordinator serves the fleet page from the tarball's lib/ui/.
      const base = /"listening":"(https:\/\/[^"]+)"/.exec(out)![1]!;
      const ca = await readFile(path.join(dir, 'coordinator-data/ca.crt'), 'utf8');
      const page = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        https.get(`${base}/ui/`, { ca }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
        }).on('error', reject);
      });
      assert.deepEqual([page.status, page.type], [200, 'text/html; charset=utf-8'], page.body);
      assert.match(page.body, /\.\/assets\/app-[A-Z0-9]+\.js/);
    } finally {
      coord.kill('SIGTERM');
      await exited;
    }
  });

  test('scripts/release refuses a bad arch and a key that is not ed25519 before building anything', async () => {
    const out = path.join(dir, 'refused-dist');
    const arch = await runCommand(path.join(REPO, 'scripts/release'), ['--arch', 'mips', '--out', out]);
    assert.equal(arch.code, 2, showResult(arch));
    assert.match(arch.stderr, /--arch must be x64, arm64 or all, got 'mips'/);
    const ec = path.join(dir, 'ec-key.pem');
    await writeFile(ec, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const key = await runCommand(path.join(REPO, 'scripts/release'), ['--signing-key', ec, '--out', out]);
    assert.equal(key.code, 1, showResult(key));
    assert.match(key.stderr, /holds a ec key; releases are signed with ed25519/);
    assert.equal(existsSync(out), false, 'nothing was written');
  });

  test("the checkout's scripts/install-agent points at scripts/release instead of installing the checkout", async () => {
    const root = path.join(dir, 'root-checkout');
    const r = await runCommand(path.join(REPO, 'scripts/install-agent'), ['--root', root, '--server', 'https://c:1']);
    assert.equal(r.code, 2, showResult(r));
    assert.match(r.stderr, /no release beside this script .*scripts\/release, then run install-agent --from dist\/nodekeeper-agent-/);
    assert.equal(existsSync(root), false);
  });

  describe('a second build, signed, for both arches', () => {
    let dist2: string;
    let publicKey: string;

    before(async () => {
      dist2 = path.join(dir, 'dist2');
      const { privateKey } = generateKeyPairSync('ed25519');
      const keyFile = path.join(dir, 'release-key.pem');
      await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const r = await buildRelease(dist2, ['--arch', 'all', '--signing-key', keyFile]);
      assert.equal(r.code, 0, showResult(r));
      publicKey = path.join(dist2, 'nodekeeper-release.pub');
    });

    test('is byte-identical for x64 (same SHA256SUMS lines) and signed with ed25519', async () => {
      const sums1 = await readFile(path.join(rel.dist, 'SHA256SUMS'), 'utf8');
      const sums2 = await readFile(path.join(dist2, 'SHA256SUMS'), 'utf8');
      for (const name of [agentName, `nodekeeper-coordinator-${VERSION}-linux-x64.tar.gz`]) {
        assert.ok(sha256Line(sums1, name), `${name} in the first SHA256SUMS`);
        assert.equal(sha256Line(sums2, name), sha256Line(sums1, name), name);
      }
      assert.equal(sums2.trim().split('\n').length, 4, sums2);
      const signature = Buffer.from((await readFile(path.join(dist2, 'SHA256SUMS.sig'), 'utf8')).trim(), 'base64');
      assert.ok(verify(null, Buffer.from(sums2), createPublicKey(await readFile(publicKey)), signature), 'SHA256SUMS.sig verifies with nodekeeper-release.pub');
      const tampered = Buffer.from(sums2.replace(/^./, (c) => (c === '0' ? '1' : '0')));
      assert.ok(!verify(null, tampered, createPublicKey(await readFile(publicKey)), signature));
    });

    test('the arm64 tarballs carry aarch64 binaries', async () => {
      const x = path.join(dir, 'arm64');
      await untar(path.join(dist2, `nodekeeper-agent-${VERSION}-linux-arm64.tar.gz`), path.join(x, 'agent'));
      assert.equal(await elfMachine(path.join(x, 'agent/node/bin/node')), 0xb7);
      await untar(path.join(dist2, `nodekeeper-coordinator-${VERSION}-linux-arm64.tar.gz`), path.join(x, 'coordinator'));
      assert.equal(await elfMachine(path.join(x, 'coordinator/node/bin/node')), 0xb7);
      assert.equal(await elfMachine(path.join(x, 'coordinator/lib/better-sqlite3-linux-arm64.node')), 0xb7);
      await rm(x, { recursive: true, force: true });
    });

    test('install-agent checks the signature and refuses a tampered tarball, tampered sums or a wrong key, installing nothing', async () => {
      const kit = async (name: string) => {
        const d = path.join(dir, name);
        await mkdir(d);
        for (const f of [agentName, 'SHA256SUMS', 'SHA256SUMS.sig']) await copyFile(path.join(dist2, f), path.join(d, f));
        return d;
      };
      const install = (from: string, root: string, key = publicKey) => runCommand(rel.installer, ['--from', from, '--public-key', key, '--root', root, '--server', 'https://c:1', '--discovery-ca-hash', CA_HASH]);

      const good = await kit('good');
      const ok = await install(path.join(good, agentName), path.join(dir, 'root-good'));
      assert.equal(ok.code, 0, showResult(ok));
      assert.match(ok.stderr, /SHA256SUMS signature good/);
      assert.ok(existsSync(path.join(dir, 'root-good', AGENT_PKG_REL, 'current/bin/nodekeeper-agent')));

      // A flipped byte in the tarball: its sum no longer matches.
      const t1 = await kit('tampered-tarball');
      const fh = await open(path.join(t1, agentName), 'r+');
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 4096);
      await fh.write(Buffer.from([b[0]! ^ 0xff]), 0, 1, 4096);
      await fh.close();
      const r1 = await install(path.join(t1, agentName), path.join(dir, 'root-t1'));
      assert.equal(r1.code, 1, showResult(r1));
      assert.match(r1.stderr, new RegExp(`REFUSED: ${agentName.replace(/\./g, '\\.')} has sha256 [0-9a-f]{64} but .* says`));

      // The same tampered tarball with SHA256SUMS rewritten to match it: the signature catches it.
      const t2 = path.join(dir, 'tampered-sums');
      await cp(t1, t2, { recursive: true });
      const digest = (await runCommand('sha256sum', [path.join(t2, agentName)])).stdout.split(' ')[0]!;
      const sums = await readFile(path.join(t2, 'SHA256SUMS'), 'utf8');
      await writeFile(path.join(t2, 'SHA256SUMS'), sums.replace(sha256Line(sums, agentName)!, `${digest}  ${agentName}`));
      const r2 = await install(path.join(t2, agentName), path.join(dir, 'root-t2'));
      assert.equal(r2.code, 1, showResult(r2));
      assert.match(r2.stderr, /REFUSED: the signature .* does not match/);

      // Untouched files, but checked with another key.
      const other = path.join(dir, 'other.pub');
      await writeFile(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
      const r3 = await install(path.join(good, agentName), path.join(dir, 'root-t3'), other);
      assert.equal(r3.code, 1, showResult(r3));
      assert.match(r3.stderr, /REFUSED: the signature/);

      // Sums that do not list the tarball at all.
      const t4 = await kit('unlisted');
      await writeFile(path.join(t4, 'SHA256SUMS'), sums.split('\n').filter((l) => !l.endsWith(agentName)).join('\n'));
      const r4 = await runCommand(rel.installer, ['--from', path.join(t4, agentName), '--root', path.join(dir, 'root-t4'), '--server', 'https://c:1']);
      assert.equal(r4.code, 1, showResult(r4));
      assert.match(r4.stderr, /REFUSED: .*SHA256SUMS has no entry for/);

      for (const root of ['root-t1', 'root-t2', 'root-t3', 'root-t4']) assert.equal(existsSync(path.join(dir, root)), false, `${root}: a refused install must create nothing`);
    });
  });

  test('installs from the tarball and its sums alone, in an empty environment, and upgrades keeping previous', async () => {
    const bare = path.join(dir, 'bare');
    await mkdir(bare);
    await copyFile(rel.agentTarball, path.join(bare, agentName));
    await copyFile(path.join(rel.dist, 'SHA256SUMS'), path.join(bare, 'SHA256SUMS'));
    await untar(path.join(bare, agentName), path.join(bare, 'x'));
    const root = path.join(bare, 'root');
    // The unpacked installer, told where the sums are: it checks the tarball beside them and installs that.
    const r = await runCommand(path.join(bare, 'x/install-agent'), ['--sha256sums', path.join(bare, 'SHA256SUMS'), '--root', root, '--server', 'https://c:1', '--discovery-ca-hash', CA_HASH], { env: EMPTY_ENV, cwd: bare });
    assert.equal(r.code, 0, showResult(r));
    assert.match(r.stderr, /sha256 of .* matches SHA256SUMS/);
    const pkg = path.join(root, AGENT_PKG_REL);
    assert.equal(await readlink(path.join(pkg, 'current')), `versions/${VERSION}`);
    assert.equal(existsSync(path.join(pkg, 'previous')), false);
    // The units go to systemd's dir, the guard beside `current` (where ExecStartPre= runs it), nothing else.
    assert.deepEqual((await readdir(path.join(root, 'etc/systemd/system'))).filter((f) => f.startsWith('nodekeeper')).sort(), [
      'nodekeeper-agent-rollback.service',
      'nodekeeper-agent-rollback.timer',
      'nodekeeper-agent.service',
    ]);
    assert.equal(await readFile(path.join(pkg, 'guard'), 'utf8'), await readFile(path.join(REPO, 'agent/systemd/nodekeeper-agent-guard'), 'utf8'));
    const meta = JSON.parse(await readFile(path.join(pkg, `versions/${VERSION}.artifact.json`), 'utf8')) as { sha256: string };
    assert.equal(`${meta.sha256}  ${agentName}`, sha256Line(await readFile(path.join(rel.dist, 'SHA256SUMS'), 'utf8'), agentName));
    // Through `current`, as the unit starts it; the launcher exports the resolved version
    // dir, where the agent reads its VERSION (NODE_OPTIONS shows what Node was given).
    const probe = "--import=data:text/javascript,process.stderr.write('NK_AGENT_INSTALL_DIR='+process.env.NK_AGENT_INSTALL_DIR+'\\n')";
    const help = await runCommand(path.join(pkg, 'current/bin/nodekeeper-agent'), ['--help'], { env: { ...EMPTY_ENV, NODE_OPTIONS: probe }, cwd: '/' });
    assert.equal(help.code, 0, showResult(help));
    assert.match(help.stdout, /^Usage: nodekeeper-agent/);
    assert.match(help.stderr, new RegExp(`^NK_AGENT_INSTALL_DIR=${path.join(pkg, 'versions', VERSION).replace(/[.+]/g, '\\$&')}$`, 'm'));
    // Nothing installed points back into the checkout: links stay inside the root, text names no checkout path.
    for (const p of await walk(root)) {
      const st = await lstat(p);
      if (st.isSymbolicLink()) {
        const target = await readlink(p);
        const resolved = target.startsWith('/') ? path.join(root, target) : path.resolve(path.dirname(p), target);
        assert.ok(resolved.startsWith(`${root}/`), `${p} -> ${target} leaves the root`);
      } else if (st.isFile() && st.size < 16 * 1024 * 1024) {
        assert.ok(!(await readFile(p, 'latin1')).includes(REPO), `${p} names the checkout ${REPO}`);
      }
    }

    // Without --from or sums: the unpacked release itself, unverified (no digest recorded),
    // and only the release's own entries (not a stray file beside them).
    await writeFile(path.join(bare, 'x/stray.txt'), 'not part of the release\n');
    const selfRoot = path.join(bare, 'root-self');
    const self = await runCommand(path.join(bare, 'x/install-agent'), ['--root', selfRoot, '--server', 'https://c:1', '--discovery-ca-hash', CA_HASH], { env: EMPTY_ENV });
    assert.equal(self.code, 0, showResult(self));
    assert.deepEqual((await readdir(path.join(selfRoot, AGENT_PKG_REL, 'versions'))).sort(), [VERSION]);
    assert.deepEqual((await readdir(path.join(selfRoot, AGENT_PKG_REL, 'versions', VERSION))).sort(), ['VERSION', 'bin', 'install-agent', 'lib', 'node', 'systemd']);
    await rm(path.join(bare, 'x/stray.txt'));

    // A newer version of the same tarball: current moves, previous keeps the old one.
    const next = path.join(dir, 'next');
    await cp(path.join(bare, 'x'), path.join(next, 'tree'), { recursive: true });
    await writeFile(path.join(next, 'tree/VERSION'), '0.99.0\n');
    const nextName = 'nodekeeper-agent-0.99.0-linux-x64.tar.gz';
    const tar = await runCommand('tar', ['-czf', path.join(next, nextName), '-C', path.join(next, 'tree'), '.']);
    assert.equal(tar.code, 0, showResult(tar));
    const sum = (await runCommand('sha256sum', [nextName], { cwd: next })).stdout;
    await writeFile(path.join(next, 'SHA256SUMS'), sum);
    const up = await runCommand(path.join(bare, 'x/install-agent'), ['--from', path.join(next, nextName), '--root', root], { env: EMPTY_ENV });
    assert.equal(up.code, 0, showResult(up));
    assert.equal(await readlink(path.join(pkg, 'current')), 'versions/0.99.0');
    assert.equal(await readlink(path.join(pkg, 'previous')), `versions/${VERSION}`);
    assert.match(up.stderr, /keeping the existing/);
  });

  test('installs from an https URL with --ca-file; refuses an untrusted server and plain http', async (t) => {
    const srv = await serveReleaseOverHttps(rel.dist, path.join(dir, 'tls'), VERSION);
    if (srv === null) {
      t.skip('needs /usr/bin/openssl (test certificate) and /usr/bin/curl');
      return;
    }
    const { requested, base } = srv;
    try {
      const args = (root: string) => ['--from', `${base}/${agentName}`, '--root', path.join(dir, root), '--server', 'https://c:1', '--discovery-ca-hash', CA_HASH];
      const ok = await runCommand(rel.installer, [...args('root-https'), '--ca-file', srv.caFile]);
      assert.equal(ok.code, 0, showResult(ok));
      assert.deepEqual(requested, [agentName, 'SHA256SUMS'], 'the sums are looked up beside the tarball');
      assert.equal(await readlink(path.join(dir, 'root-https', AGENT_PKG_REL, 'current')), `versions/${VERSION}`);

      const untrusted = await runCommand(rel.installer, args('root-untrusted'));
      assert.equal(untrusted.code, 1, showResult(untrusted));
      assert.match(untrusted.stderr, /cannot download https:\/\/127\.0\.0\.1/);
      assert.equal(existsSync(path.join(dir, 'root-untrusted')), false);

      const http = await runCommand(rel.installer, ['--from', `http://127.0.0.1:1/${agentName}`, '--root', path.join(dir, 'root-http'), '--server', 'https://c:1']);
      assert.equal(http.code, 2, showResult(http));
      assert.match(http.stderr, /--from must be a file or an https:\/\/ URL/);
      assert.equal(existsSync(path.join(dir, 'root-http')), false);
    } finally {
      await srv.close();
    }
  });
});
