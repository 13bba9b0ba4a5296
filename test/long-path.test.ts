/**
 * Where the checkout lives must not matter (issue 11, item 5): a clone of this
 * checkout's HEAD at a path exactly 120 characters long, inside root's home directory
 * (mode 700 on the way, as a user's clone there is), runs `scripts/demo` to exit 0.
 * Before, a 75-character checkout path already broke the demo: containerd's socket,
 * under the checkout, was over the ~104 bytes a unix socket path may have.
 *
 * Committed HEAD only (uncommitted edits are not in the clone). The toolchain is not
 * downloaded again: the clone's `.tools` holds symlinks to this checkout's Node and
 * pnpm, and its own `bin/` (scripts/lib/env.sh writes the pnpm wrapper there);
 * dependencies come from the pnpm store (`pnpm install --frozen-lockfile`, seconds);
 * the reference Kubernetes binaries from ~/.cache/nodekeeper/kube, as for any checkout.
 * About two minutes, nearly all of it the demo itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { programEnv, REPO } from './harness/processes.ts';

const HOME = '/root';
const LENGTH = 120;

function unavailable(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return `needs root: the clone goes inside ${HOME}`;
  if (!existsSync(HOME)) return `${HOME} does not exist`;
  if (!existsSync(path.join(REPO, '.git'))) return 'not a git checkout: nothing to clone';
  return null;
}

/** The clone's .tools: symlinks to this checkout's Node and pnpm, its own bin/. */
async function shareToolchain(clone: string): Promise<void> {
  const tools = path.join(REPO, '.tools');
  await mkdir(path.join(clone, '.tools'));
  if (!existsSync(tools)) return; // env.sh then uses the machine's Node, or provisions one
  const real = realpathSync(tools);
  for (const entry of await readdir(real)) {
    if (entry === 'node' || entry.startsWith('pnpm-')) await symlink(path.join(real, entry), path.join(clone, '.tools', entry));
  }
}

/** Runs `cmd` in `cwd` to its end; kills its whole process group after `timeoutMs`. */
function runLogged(cmd: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: programEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', output });
    });
  });
}

test(`a clone at a ${LENGTH}-character path inside ${HOME} runs scripts/demo to exit 0`, { skip: unavailable() ?? false, timeout: 900_000 }, async () => {
  const head = execFileSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  const base = await mkdtemp(path.join(HOME, 'nk-long-'));
  try {
    assert.equal((await stat(base)).mode & 0o777, 0o700, 'a private dir on the way, as in root\'s home');
    const clone = path.join(base, 'p'.repeat(LENGTH - base.length - 1));
    assert.equal(clone.length, LENGTH);
    // --shared borrows this repository's objects: no copy, and the clone is gone before they could change.
    execFileSync('git', ['clone', '-q', '--no-checkout', '--shared', REPO, clone], { stdio: 'pipe' });
    execFileSync('git', ['-C', clone, 'checkout', '-q', '--detach', head], { stdio: 'pipe' });
    await shareToolchain(clone);

    const started = Date.now();
    const demo = await runLogged(path.join(clone, 'scripts/demo'), [], clone, 600_000);
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    assert.equal(demo.code, 0, `scripts/demo in ${clone} exited ${demo.code} after ${seconds} s:\n${demo.output.slice(-6000)}`);
    assert.match(demo.output, /\[\d+\] Stopping the fleet\n\s+done/);
    // Its sockets were not under the clone.
    const socket = /socket (\S+containerd\.sock)/.exec(demo.output)?.[1];
    assert.ok(socket !== undefined && !socket.startsWith(clone), `containerd socket ${socket}`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
