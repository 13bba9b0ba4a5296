/**
 * The ticket key file's decisions (pure), and the ring in process against a real TLS
 * server: the timer rotates on schedule and the previous key still opens tickets, a
 * certificate renewal (setSecureContext) keeps the keys, a planted symlink is refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createLogger } from '@nodekeeper/common';
import { ensurePki, type TlsMaterial } from './pki.ts';
import { decodeTicketKeys, encodeTicketKeys, nextTicketKeys, TICKET_FILE_BYTES, TicketKeyRing, type FileFacts } from './ticket-keys.ts';

const ROT = 60_000;
const key = (b: number) => Buffer.alloc(48, b);
const ours: FileFacts = { regular: true, uid: 1000, mode: 0o100600, size: TICKET_FILE_BYTES, ourUid: 1000 };
const good = encodeTicketKeys({ rotatedAt: 1_000_000, current: key(1), previous: key(2) });

describe('ticket key file decisions', () => {
  test('round trip, with and without a previous key', () => {
    assert.deepEqual(decodeTicketKeys(good, ours, 1_000_000, ROT), { rotatedAt: 1_000_000, current: key(1), previous: key(2) });
    const none = encodeTicketKeys({ rotatedAt: 5, current: key(3), previous: null });
    assert.deepEqual(decodeTicketKeys(none, ours, 5, ROT), { rotatedAt: 5, current: key(3), previous: null });
  });

  test('refused: not a regular file, another owner, group or other bits, wrong size or magic, future date, empty key', () => {
    const problem = (data: Buffer, facts: Partial<FileFacts> = {}, now = 1_000_000) => {
      const d = decodeTicketKeys(data, { ...ours, size: data.length, ...facts }, now, ROT);
      assert.ok('problem' in d, `accepted: ${JSON.stringify(facts)}`);
      return d.problem;
    };
    assert.match(problem(good, { regular: false }), /regular file/);
    assert.match(problem(good, { uid: 0 }), /owned by uid 0/);
    assert.match(problem(good, { mode: 0o100640 }), /mode 0640/);
    assert.match(problem(good, { mode: 0o100602 }), /mode 0602/);
    assert.match(problem(Buffer.concat([good, Buffer.alloc(1)])), /113 bytes/);
    assert.match(problem(good.subarray(0, 50)), /50 bytes/);
    const magic = Buffer.from(good);
    magic[0] = 0x41;
    assert.match(problem(magic), /magic/);
    assert.match(problem(good, {}, 1_000_000 - ROT - 1), /future/);
    assert.match(problem(encodeTicketKeys({ rotatedAt: 1, current: Buffer.alloc(48), previous: null })), /empty/);
  });

  test('rotation: fresh keys with none, the same set before the interval, current becomes previous after it', () => {
    let n = 10;
    const fresh = () => key(n++);
    const first = nextTicketKeys(null, 100, ROT, fresh);
    assert.deepEqual(first, { set: { rotatedAt: 100, current: key(10), previous: null }, rotated: true });
    assert.equal(nextTicketKeys(first.set, 100 + ROT - 1, ROT, fresh).rotated, false);
    const second = nextTicketKeys(first.set, 100 + ROT, ROT, fresh);
    assert.deepEqual(second, { set: { rotatedAt: 100 + ROT, current: key(11), previous: key(10) }, rotated: true });
    assert.deepEqual(nextTicketKeys(second.set, 100 + 3 * ROT, ROT, fresh).set.previous, key(11), 'only one previous key is kept');
  });
});

describe('the ticket key ring on a real TLS server', { timeout: 60_000 }, () => {
  let dir: string;
  let material: TlsMaterial;
  let server: tls.Server;
  let port: number;
  const log = createLogger({ name: 'ticket-keys-test', level: 'silent' });

  const connect = (session?: Buffer): Promise<{ reused: boolean; session: Buffer }> => new Promise((resolve, reject) => {
    let ticket = session;
    const s = tls.connect({ host: '127.0.0.1', port, ca: material.caPem, servername: 'localhost', ...(session === undefined ? {} : { session }) });
    s.on('session', (t: Buffer) => (ticket = t));
    s.on('data', () => {});
    s.on('error', reject);
    s.on('end', () => (ticket === undefined ? reject(new Error('no ticket')) : resolve({ reused: s.isSessionReused(), session: ticket })));
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-ticket-keys-'));
    material = await ensurePki(path.join(dir, 'pki'), ['localhost', '127.0.0.1']);
    server = tls.createServer({ cert: material.certPem, key: material.keyPem, sessionTimeout: 3600 }, (s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  test('the timer rotates on schedule, on disk first; the previous key still opens tickets, the one before does not', async () => {
    const file = path.join(dir, 'pki', 'ticket-keys');
    const now = 1_000_000;
    const ring = await TicketKeyRing.open(file, ROT, log, () => now);
    ring.attach(server);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const t0 = (await connect()).session;
    assert.equal((await connect(t0)).reused, true);

    // The timer fires at the rotation time (a real 1 s interval stands in for 60 s).
    const before = await readFile(file);
    const timed = await TicketKeyRing.open(file, 1000, log); // dated 1970 + 1000 s: due at once
    timed.attach(server);
    assert.notDeepEqual((await readFile(file)).subarray(16, 64), before.subarray(16, 64));
    assert.equal((await connect(t0)).reused, true, 'opened by the previous key');
    const t1 = (await connect()).session;
    const rotatedAt = timed.keys.rotatedAt;
    timed.start();
    const deadline = Date.now() + 10_000;
    while (timed.keys.rotatedAt === rotatedAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    timed.stop();
    assert.notEqual(timed.keys.rotatedAt, rotatedAt, 'the timer rotated');
    assert.deepEqual((await readFile(file)).subarray(64, 112), timed.keys.previous, 'the rotation is on disk');
    assert.equal((await connect(t0)).reused, false, 'two rotations old: full handshake');
    assert.equal((await connect(t1)).reused, true);

    // A certificate renewal makes a new context with random keys: attach serves ours again.
    server.setSecureContext({ cert: material.certPem, key: material.keyPem });
    timed.attach(server);
    assert.equal((await connect(t1)).reused, true, 'resumed after setSecureContext');
  });

  test('a symlink planted as the key file is not followed: refused and replaced', async () => {
    const file = path.join(dir, 'pki', 'planted');
    const target = path.join(dir, 'elsewhere');
    await writeFile(target, good, { mode: 0o600 });
    await symlink(target, file);
    const ring = await TicketKeyRing.open(file, ROT, log);
    assert.notDeepEqual(ring.keys.current, key(1));
    assert.equal((await stat(file)).isFile(), true, 'a regular file replaced the link');
    assert.deepEqual(await readFile(target), good, 'the link target is untouched');
  });
});
