import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { openStore } from './db.ts';
import { tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

const child = fileURLToPath(new URL('./kill-child.fixture.ts', import.meta.url));

test('an enrollment acknowledged just before a SIGKILL is there on reopen', async (t) => {
  const file = tmp.file('killed.db');
  const proc = spawn(process.execPath, [child, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const acknowledged: Array<{ name: string; credential: string }> = [];
  const lines = createInterface({ input: proc.stdout });
  for await (const line of lines) {
    acknowledged.push(JSON.parse(line) as { name: string; credential: string });
    // Kill it while it is still enrolling: mid-transaction for the next one, most likely.
    if (acknowledged.length === 25) {
      proc.kill('SIGKILL');
      break;
    }
  }
  if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
  assert.equal(proc.signalCode, 'SIGKILL');
  assert.equal(acknowledged.length, 25);

  const store = openStore(file);
  try {
    for (const { name, credential } of acknowledged) {
      assert.equal(store.authenticateMachine(credential).name, name);
      assert.deepEqual(store.machineEvents(name, 5).map((e) => e.reason), ['Enrolled']);
    }
    // Whatever else the child did before dying is whole: every machine has its event and
    // the token's use count matches the machines enrolled.
    const machines = store.listMachines();
    assert.ok(machines.length >= acknowledged.length);
    assert.equal(store.listTokens()[0]?.used, machines.length);
  } finally {
    store.close();
  }
});
