import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

// What a fresh process loads when it imports the agent, recorded by a resolve hook.
const SCRIPT = `
import { registerHooks } from 'node:module';
const urls = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
await import(${JSON.stringify(new URL('./agent.ts', import.meta.url).href)});
process.stdout.write(JSON.stringify({ urls, builtins: process.moduleLoadList }));
`;

test('importing the agent loads neither undici nor the packages only installs and rare fallbacks need', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '--input-type=module', '-e', SCRIPT], { maxBuffer: 16 * 1024 * 1024 });
  const { urls, builtins } = JSON.parse(stdout) as { urls: string[]; builtins: string[] };
  // The hook saw the agent's real dependencies, so an absence below means something.
  assert.ok(urls.some((u) => /\/node_modules\/ws\//.test(u)), 'ws was not seen: the resolve hook recorded nothing useful');
  assert.ok(urls.some((u) => u === 'node:http' || u === 'node:https'), 'no http module was seen');
  // An ESM import of node:http reads its lazy WebSocket getter and loads undici (~13 MB
  // resident); the agent takes node:http through node-http.ts instead.
  assert.deepEqual(builtins.filter((b) => b.includes('undici')), []);
  // tar (installs) and systeminformation (hosts without os-release) load on first use.
  assert.deepEqual(urls.filter((u) => /\/node_modules\/(tar|systeminformation)\//.test(u)), []);
});
