/**
 * The shipped unit's ReadWritePaths= against what the agent manages (issue 11): under
 * ProtectSystem=strict every path it writes outside its state dirs must be listed, and
 * nothing more may be. Pure: reads the unit file, no systemd needed.
 *
 * What must be writable is each default link path's DIRECTORY (a link is a temporary
 * symlink renamed into place beside it; /opt/cni/bin is renamed aside on adoption, which
 * a mount point cannot be) and config.restore's default dir (the CNI conf dir).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_INSTALL_ALLOW_LIST } from '../packages/protocol/src/install-policy.ts';
import { defaultProbeConfig } from '../agent/src/probes/config.ts';
import { REPO } from './harness/processes.ts';

const UNIT = path.join(REPO, 'agent/systemd/nodekeeper-agent.service');

/** Every value of `key=` in the [Service] section, split on whitespace. */
function serviceValues(text: string, key: string): string[] {
  let section = '';
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Service' && line.startsWith(`${key}=`)) out.push(...line.slice(key.length + 1).trim().split(/\s+/).filter((v) => v !== ''));
  }
  return out;
}

/** The dir whose entries an allow-list entry changes: a link path's parent, or a `dir/` entry itself. */
const managedDir = (entry: string) => (entry.endsWith('/') ? entry.slice(0, -1) : path.posix.dirname(entry));

test('ReadWritePaths= covers exactly the default install allow-list dirs and the config.restore dir', async () => {
  const text = await readFile(UNIT, 'utf8');
  const listed = serviceValues(text, 'ReadWritePaths');
  // "-" (ignore if missing) and "+" prefixes only change how systemd treats the path.
  const paths = listed.map((p) => p.replace(/^[-+]+/, ''));
  assert.equal(new Set(paths).size, paths.length, `no path twice: ${listed.join(' ')}`);
  const expected = new Set([...DEFAULT_INSTALL_ALLOW_LIST.paths.map(managedDir), defaultProbeConfig.cni.confDir]);
  assert.deepEqual([...paths].sort(), [...expected].sort());
});

test('paths a node may lack are "-" so the unit still starts there; /usr/bin is always present', async () => {
  const listed = serviceValues(await readFile(UNIT, 'utf8'), 'ReadWritePaths');
  for (const p of listed) {
    const bare = p.replace(/^[-+]+/, '');
    if (bare === '/usr/bin') assert.equal(p, '/usr/bin');
    else assert.ok(p.startsWith('-'), `${bare} may be missing on a node without CNI: write -${bare}`);
  }
});

test('the hardening stays: ProtectSystem=strict and no writable /', async () => {
  const text = await readFile(UNIT, 'utf8');
  assert.deepEqual(serviceValues(text, 'ProtectSystem'), ['strict']);
  for (const p of serviceValues(text, 'ReadWritePaths')) assert.notEqual(p.replace(/^[-+]+/, ''), '/');
});
