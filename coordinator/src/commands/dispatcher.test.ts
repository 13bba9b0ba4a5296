import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@nodekeeper/common';
import type { Command } from '@nodekeeper/protocol';
import { openStore } from '../store/db.ts';
import { identity, tempDir } from '../store/test-support.ts';
import type { CommandRecord } from '../model/commands.ts';
import { CommandDispatcher } from './dispatcher.ts';

const log = createLogger({ name: 'test', level: 'silent' });

function setup(file: string, now: { t: number }) {
  const store = openStore(file, { now: () => now.t });
  const { token } = store.createToken({ ttlMs: 60_000, maxUses: 2, description: '' });
  if (store.getMachine('node-a') === null) {
    store.enroll({ token, identity: identity('node-a'), agentVersion: 't' });
    store.enroll({ token, identity: identity('node-b'), agentVersion: 't' });
  }
  const connected = new Set<string>();
  const sent: Array<[string, Command]> = [];
  const d = new CommandDispatcher({ store, clock: () => now.t, log });
  d.setTransport((machine, c) => {
    if (!connected.has(machine)) return false;
    sent.push([machine, c]);
    return true;
  });
  const finished: CommandRecord[] = [];
  d.onFinished((c) => finished.push(c));
  return { store, d, connected, sent, finished };
}

test('a command waits for its machine, is delivered on connect, and finishes once', () => {
  const tmp = tempDir();
  const now = { t: 1_000_000 };
  const { store, d, connected, sent, finished } = setup(tmp.file(), now);
  const c = d.issue({ machine: 'node-a', kind: 'probe.now', params: {}, owner: 'test', timeoutMs: 5000 });
  assert.equal(store.getCommand(c.id)?.state, 'Pending');
  assert.equal(sent.length, 0);

  connected.add('node-a');
  d.machineConnected('node-a');
  assert.deepEqual(sent.map(([m, f]) => [m, f.commandId]), [['node-a', c.id]]);
  assert.equal(store.getCommand(c.id)?.state, 'Sent');

  // Another machine's connection cannot report on it.
  assert.equal(d.result('node-b', { type: 'command.result', commandId: c.id, ok: true }), false);
  assert.equal(d.progress('node-b', { type: 'command.progress', commandId: c.id, step: 'x', message: '' }), false);
  assert.equal(store.getCommand(c.id)?.state, 'Sent');

  assert.equal(d.progress('node-a', { type: 'command.progress', commandId: c.id, step: 'download', message: '10%' }), true);
  assert.equal(store.getCommand(c.id)?.step, 'download');
  assert.equal(d.result('node-a', { type: 'command.result', commandId: c.id, ok: true, result: { message: 'done' } }), true);
  assert.equal(d.result('node-a', { type: 'command.result', commandId: c.id, ok: false }), true, 'a repeated result is known but ignored');
  assert.equal(store.getCommand(c.id)?.state, 'Succeeded');
  assert.equal(finished.length, 1);
  store.close();
  tmp.remove();
});

test('open commands survive a restart and are re-delivered; overdue ones time out', () => {
  const tmp = tempDir();
  const now = { t: 2_000_000 };
  const first = setup(tmp.file(), now);
  first.connected.add('node-a');
  const c = first.d.issue({ machine: 'node-a', kind: 'probe.now', params: { a: 1 }, owner: null, timeoutMs: 1000 });
  first.store.close();

  const second = setup(tmp.file(), now);
  second.connected.add('node-a');
  second.d.machineConnected('node-a');
  assert.deepEqual(second.sent.map(([, f]) => [f.commandId, f.params]), [[c.id, { a: 1 }]]);

  now.t += 1000 + 30_000 - 1;
  second.d.expire();
  assert.equal(second.store.getCommand(c.id)?.state, 'Sent');
  now.t += 2;
  second.d.expire();
  const done = second.store.getCommand(c.id);
  assert.equal(done?.state, 'TimedOut');
  assert.equal(done?.error?.code, 'NK_COMMAND_TIMED_OUT');
  assert.equal(second.finished.length, 1);
  second.store.close();
  tmp.remove();
});
