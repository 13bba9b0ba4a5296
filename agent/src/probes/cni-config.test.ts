import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listConfigFiles, parseConfig, selectConfig } from './cni-config.ts';

const conflist = (name: string, types: string[]): string =>
  JSON.stringify({ cniVersion: '1.0.0', name, plugins: types.map((type) => ({ type })) });

let dir = '';
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'nk-cniconf-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function freshDir(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(path.join(dir, 'd-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(d, name), text);
  return d;
}

test('parseConfig accepts a conflist and lists its plugins with IPAM delegates', () => {
  const text = JSON.stringify({
    cniVersion: '1.0.0', name: 'net',
    plugins: [{ type: 'bridge', ipam: { type: 'host-local' } }, { type: 'portmap' }],
  });
  assert.deepEqual(parseConfig('/d/10.conflist', text), {
    file: '/d/10.conflist', name: 'net', cniVersion: '1.0.0',
    plugins: [{ type: 'bridge', ipamType: 'host-local' }, { type: 'portmap', ipamType: null }],
  });
});

test('parseConfig wraps a single-plugin .conf/.json', () => {
  const text = JSON.stringify({ cniVersion: '0.4.0', name: 'one', type: 'ptp', ipam: { type: 'static' } });
  for (const file of ['/d/a.conf', '/d/a.json']) {
    const got = parseConfig(file, text);
    assert.ok(!('problem' in got));
    assert.deepEqual(got.plugins, [{ type: 'ptp', ipamType: 'static' }]);
  }
});

test('parseConfig names each problem', () => {
  const problem = (file: string, text: string): string => {
    const got = parseConfig(file, text);
    assert.ok('problem' in got, `expected a problem for ${text}`);
    return got.problem;
  };
  assert.match(problem('/d/a.conflist', '{"cniVersion": "1.0.0",'), /^not valid JSON/);
  assert.match(problem('/d/a.conflist', '[]'), /not a JSON object/);
  assert.match(problem('/d/a.conflist', '{"name":"n","plugins":[{"type":"bridge"}]}'), /missing "cniVersion"/);
  assert.match(problem('/d/a.conflist', '{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}'), /missing "name"/);
  assert.match(problem('/d/a.conflist', '{"cniVersion":"1.0.0","name":"n"}'), /missing "plugins"/);
  assert.match(problem('/d/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[]}'), /"plugins" is empty/);
  assert.match(problem('/d/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[{"bridge":"x"}]}'), /plugins\[0\] has no "type"/);
  assert.match(problem('/d/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}'), /not a plugin name/);
  assert.match(problem('/d/a.conf', conflist('n', ['bridge'])), /missing "type" \(a plugin list/);
});

test('listConfigFiles keeps .conf/.conflist/.json in lexical order and skips the rest', async () => {
  const d = await freshDir({ 'b.conf': '', 'a.conflist': '', '99-z.json': '', 'notes.txt': '', 'c.conf.bak': '' });
  await mkdir(path.join(d, 'dir.conf'));
  assert.deepEqual((await listConfigFiles(d)).map((f) => path.basename(f)), ['99-z.json', 'a.conflist', 'b.conf']);
});

test('selectConfig: missing dir, empty dir, all invalid', async () => {
  assert.equal((await selectConfig(path.join(dir, 'nope'))).kind, 'no-dir');
  assert.equal((await selectConfig(await freshDir({ 'README': 'x' }))).kind, 'empty');
  const bad = await selectConfig(await freshDir({ '10-a.conflist': '{', '20-b.conf': '{"cniVersion":"1.0.0"}' }));
  assert.equal(bad.kind, 'all-invalid');
  assert.ok(bad.kind === 'all-invalid');
  assert.deepEqual(bad.invalid.map((i) => path.basename(i.file)), ['10-a.conflist', '20-b.conf']);
});

test('selectConfig takes the first valid file and names those passed over', async () => {
  const d = await freshDir({
    '05-broken.conflist': '{"oops"',
    '10-main.conflist': conflist('main', ['bridge']),
    '20-other.conflist': conflist('other', ['ptp']),
  });
  const got = await selectConfig(d);
  assert.equal(got.kind, 'chosen');
  assert.ok(got.kind === 'chosen');
  assert.equal(got.config.name, 'main');
  assert.deepEqual(got.passedOver.map((i) => path.basename(i.file)), ['05-broken.conflist']);
});
