/**
 * Child process for durability.test.ts: enrolls machines into the store at argv[2] one
 * after another, printing each acknowledged enrollment as a JSON line, until killed.
 */
import { openStore } from './db.ts';
import { identity } from './test-support.ts';

const file = process.argv[2];
if (file === undefined) throw new TypeError('usage: kill-child.fixture.ts STORE_FILE');
const store = openStore(file);
const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: 100_000, description: 'kill test' });
for (let i = 0; ; i++) {
  const name = `node-${i}`;
  const { credential } = store.enroll({ token, identity: identity(name), agentVersion: '0.1.0' });
  // Written synchronously: once the parent reads this line, the enrollment was acknowledged.
  process.stdout.write(`${JSON.stringify({ name, credential })}\n`);
  // Yield now and then so a burst of output reaches the parent while we keep going.
  if (i % 4 === 3) await new Promise((r) => setImmediate(r));
}
