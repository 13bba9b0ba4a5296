import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasCode } from '@nodekeeper/common';
import { listAddresses, readIdentity } from './identity.ts';

const ID = '0123456789abcdef0123456789abcdef';
let root = '';
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nk-id-'));
  await mkdir(path.join(root, 'etc'));
});
after(async () => { await rm(root, { recursive: true, force: true }); });

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false): os.NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '00:00:00:00:00:00', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as os.NetworkInterfaceInfo;
const interfaces = () => ({
  lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
  eth0: [iface('10.0.0.5', 'IPv4'), iface('fe80::1', 'IPv6'), iface('2001:db8::5', 'IPv6')],
  eth1: [iface('192.168.1.9', 'IPv4')],
});

test('readIdentity reads machine-id and hostname under the host root', async () => {
  await writeFile(path.join(root, 'etc/machine-id'), `${ID}\n`);
  await writeFile(path.join(root, 'etc/hostname'), 'node-a\n');
  const id = await readIdentity({ hostRoot: root, zone: 'idc-1', labels: { rack: 'r1' } }, { networkInterfaces: interfaces });
  assert.deepEqual(id, {
    machineId: ID,
    hostname: 'node-a',
    addresses: ['10.0.0.5', '192.168.1.9', '2001:db8::5'],
    zone: 'idc-1',
    labels: { rack: 'r1' },
  });
});

test('hostname: config first, then /etc/hostname, then the kernel\'s', async () => {
  await writeFile(path.join(root, 'etc/machine-id'), ID);
  await writeFile(path.join(root, 'etc/hostname'), 'from-file\n');
  const deps = { networkInterfaces: interfaces, hostname: () => 'from-kernel' };
  assert.equal((await readIdentity({ hostRoot: root, hostname: 'from-config', labels: {} }, deps)).hostname, 'from-config');
  assert.equal((await readIdentity({ hostRoot: root, labels: {} }, deps)).hostname, 'from-file');
  await rm(path.join(root, 'etc/hostname'));
  const id = await readIdentity({ hostRoot: root, labels: {} }, deps);
  assert.equal(id.hostname, 'from-kernel');
  assert.equal(id.zone, null);
});

test('a missing machine-id is NK_AGENT_MACHINE_ID_MISSING', async () => {
  await rm(path.join(root, 'etc/machine-id'), { force: true });
  await assert.rejects(readIdentity({ hostRoot: root, labels: {} }), (err) => hasCode(err, 'NK_AGENT_MACHINE_ID_MISSING') && err.cause !== undefined);
});

test('a malformed machine-id is NK_AGENT_MACHINE_ID_INVALID', async () => {
  for (const bad of ['', '\n', 'not-a-machine-id', ID.toUpperCase(), `${ID}0`, 'uninitialized\n']) {
    await writeFile(path.join(root, 'etc/machine-id'), bad);
    await assert.rejects(readIdentity({ hostRoot: root, labels: {} }), (err) => hasCode(err, 'NK_AGENT_MACHINE_ID_INVALID'), JSON.stringify(bad));
  }
});

test('an unreadable machine-id is NK_AGENT_MACHINE_ID_UNREADABLE', async () => {
  await rm(path.join(root, 'etc/machine-id'), { force: true });
  await mkdir(path.join(root, 'etc/machine-id')); // a directory: EISDIR on read
  try {
    await assert.rejects(readIdentity({ hostRoot: root, labels: {} }), (err) => hasCode(err, 'NK_AGENT_MACHINE_ID_UNREADABLE'));
  } finally {
    await rm(path.join(root, 'etc/machine-id'), { recursive: true });
  }
});

test('listAddresses drops loopback and IPv6 link-local, IPv4 first', () => {
  assert.deepEqual(listAddresses(interfaces), ['10.0.0.5', '192.168.1.9', '2001:db8::5']);
  assert.deepEqual(listAddresses(() => ({})), []);
});
