import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailure, runCommand } from './run-command.ts';

test('runCommand passes stdin and a clean environment', async () => {
  process.env['NK_SHOULD_NOT_LEAK'] = 'secret';
  try {
    const r = await runCommand('/bin/sh', ['-c', 'read line; echo "in=$line leak=${NK_SHOULD_NOT_LEAK:-none} x=$X"'], {
      timeoutMs: 10_000,
      env: { X: 'y' },
      input: 'hello\n',
    });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), 'in=hello leak=none x=y');
  } finally {
    delete process.env['NK_SHOULD_NOT_LEAK'];
  }
});

test('runCommand kills a child that outlives its timeout', async () => {
  const r = await runCommand('/bin/sleep', ['30'], { timeoutMs: 100 });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.match(describeFailure('/bin/sleep', r), /did not finish in time/);
});

test('runCommand bounds output and kills a chatty child', async () => {
  const r = await runCommand('/usr/bin/yes', [], { timeoutMs: 10_000, maxBytes: 1000 });
  assert.equal(r.truncated, true);
  assert.equal(r.stdout.length, 1000);
});

test('runCommand reports a missing binary as a spawn error', async () => {
  const r = await runCommand('/nonexistent/bin', [], { timeoutMs: 1000 });
  assert.equal(r.spawnError?.code, 'ENOENT');
  assert.match(describeFailure('/nonexistent/bin', r), /ENOENT/);
});

test('runCommand reports exit codes with the first line of stderr', async () => {
  const r = await runCommand('/bin/sh', ['-c', 'echo "boom happened" >&2; exit 3'], { timeoutMs: 10_000 });
  assert.equal(r.code, 3);
  assert.equal(describeFailure('x', r), 'x exited with code 3: boom happened');
});

test('runCommand refuses a non-positive timeout', () => {
  assert.throws(() => runCommand('/bin/true', [], { timeoutMs: 0 }), RangeError);
});
