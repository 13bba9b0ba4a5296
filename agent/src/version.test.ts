/**
 * The version the agent reports (shared release design): the first line of
 * $NK_AGENT_INSTALL_DIR/VERSION, else the sources' package.json version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from './config.ts';
import { readAgentVersion, sourceVersion } from './version.ts';

test('the release VERSION file wins; without it, or with no version in it, the sources\' version', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-version-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(readAgentVersion(null, () => 'src'), 'src');
  assert.equal(readAgentVersion(dir, () => 'src'), 'src', 'no VERSION file');
  await writeFile(path.join(dir, 'VERSION'), '0.2.0\nbuilt 2026-12-03\n');
  assert.equal(readAgentVersion(dir, () => 'src'), '0.2.0', 'the first line');
  await writeFile(path.join(dir, 'VERSION'), '../../etc/passwd\n');
  assert.equal(readAgentVersion(dir, () => 'src'), 'src', 'not a version: ignored (a hello with it would be refused)');
  assert.match(sourceVersion(), /^\d+\.\d+\.\d+/);
});

test('the install dir comes from the launcher\'s NK_AGENT_INSTALL_DIR, absolute only', () => {
  const base = ['--server', 'https://c:1'];
  assert.equal(loadConfig(base, {}).config.installDir, null);
  assert.equal(loadConfig(base, { NK_AGENT_INSTALL_DIR: '/var/lib/nodekeeper/packages/nodekeeper-agent/versions/0.2.0' }).config.installDir, '/var/lib/nodekeeper/packages/nodekeeper-agent/versions/0.2.0');
  assert.equal(loadConfig(base, { NK_AGENT_INSTALL_DIR: 'relative/dir' }).config.installDir, null);
  assert.equal(loadConfig(base, {}).config.selfUpgradeKillAt, null, 'the test hook is off unless set');
});
