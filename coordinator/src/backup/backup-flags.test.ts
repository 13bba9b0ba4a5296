import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '@nodekeeper/common';
import { loadConfig } from '../config.ts';

const refused = (argv: string[], re: RegExp) =>
  assert.throws(() => loadConfig(argv, {}), (e: unknown) => e instanceof AppError && e.code === 'NK_CONFIG_INVALID' && re.test(e.message));

test('backup flags: off by default; a Go duration, a keep count, and both only with --backup-dir', () => {
  assert.deepEqual(loadConfig([], {}).config.backup, { dir: null, intervalMs: 6 * 3_600_000, keep: 7 });
  assert.deepEqual(loadConfig(['--backup-dir', '/b', '--backup-interval', '1h30m', '--backup-keep', '3'], {}).config.backup, { dir: '/b', intervalMs: 5_400_000, keep: 3 });
  assert.equal(loadConfig(['--backup-dir', '/b'], {}).config.backup.intervalMs, 6 * 3_600_000);
  refused(['--backup-interval', '1h'], /need --backup-dir/);
  refused(['--backup-keep', '2'], /need --backup-dir/);
  refused(['--backup-dir', '/b', '--backup-interval', '6'], /missing unit/);
  refused(['--backup-dir', '/b', '--backup-interval', '1d'], /use 24h for a day/);
  refused(['--backup-dir', '/b', '--backup-interval', '500ms'], /from 1s/);
  refused(['--backup-dir', '/b', '--backup-keep', '0'], /backup keep/);
  refused(['--backup-dir', ''], /backup dir/);
});
