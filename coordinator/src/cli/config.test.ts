import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@nodekeeper/common';
import { resolveConnection } from './config.ts';
import { exitCodeFor } from './cli-errors.ts';

let dir: string;
let home: string;

function write(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

function fails(fn: () => unknown, code: string, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.code, code, err.message);
    for (const p of parts) typeof p === 'string' ? assert.ok(err.message.includes(p), `${err.message} lacks ${p}`) : assert.match(err.message, p);
    return true;
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nkctl-config-'));
  home = join(dir, 'home');
  mkdirSync(join(home, '.config', 'nodekeeper'), { recursive: true });
  write(join(dir, 'ca-flag.pem'), 'CA FROM FLAG');
  write(join(dir, 'ca-env.pem'), 'CA FROM ENV');
  write(join(dir, 'ca-file.pem'), 'CA FROM FILE');
  write(join(dir, 'token.txt'), '  tok-from-token-file \n');
  write(join(home, '.config', 'nodekeeper', 'nkctl.yaml'), 'server: https://home.example:1\ntoken: tok-home\n');
  write(join(dir, 'explicit.yaml'), 'server: https://file.example:8443/\ntokenFile: token.txt\nca: ca-file.pem\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('connection settings precedence', () => {
  it('reads the default config file under $HOME when nothing else is given', () => {
    const c = resolveConnection({}, { HOME: home }, dir);
    assert.equal(c.server, 'https://home.example:1');
    assert.equal(c.token, 'tok-home');
    assert.equal(c.configFile, join(home, '.config', 'nodekeeper', 'nkctl.yaml'));
  });

  it('--config beats $NKCTL_CONFIG beats the default file; paths inside are relative to the file', () => {
    const env = { HOME: home, NKCTL_CONFIG: join(home, '.config', 'nodekeeper', 'nkctl.yaml') };
    assert.equal(resolveConnection({}, env, dir).server, 'https://home.example:1');
    const c = resolveConnection({ config: 'explicit.yaml' }, env, dir);
    assert.equal(c.server, 'https://file.example:8443');
    assert.equal(c.token, 'tok-from-token-file');
    assert.equal(c.ca, 'CA FROM FILE');
    assert.deepEqual(c.sources, { server: 'file', token: 'file', ca: 'file' });
  });

  it('env beats the file, flags beat env, setting by setting', () => {
    const env = { HOME: home, NKCTL_SERVER: 'https://env.example:2', NKCTL_TOKEN: 'tok-env', NKCTL_CA: join(dir, 'ca-env.pem') };
    const fromEnv = resolveConnection({ config: 'explicit.yaml' }, env, dir);
    assert.deepEqual([fromEnv.server, fromEnv.token, fromEnv.ca], ['https://env.example:2', 'tok-env', 'CA FROM ENV']);
    const fromFlags = resolveConnection({ config: 'explicit.yaml', server: 'http://flag.example:3', token: 'tok-flag', ca: 'ca-flag.pem' }, env, dir);
    assert.deepEqual([fromFlags.server, fromFlags.token, fromFlags.ca], ['http://flag.example:3', 'tok-flag', 'CA FROM FLAG']);
    assert.deepEqual(fromFlags.sources, { server: 'flag', token: 'flag', ca: 'flag' });
    // Only the server from a flag: the rest still comes from env.
    const mixed = resolveConnection({ server: 'https://flag.example:4' }, env, dir);
    assert.deepEqual(mixed.sources, { server: 'flag', token: 'env', ca: 'env' });
  });

  it('--token-file beats $NKCTL_TOKEN', () => {
    const c = resolveConnection({ server: 'https://x:1', tokenFile: 'token.txt' }, { HOME: home, NKCTL_TOKEN: 'tok-env' }, dir);
    assert.equal(c.token, 'tok-from-token-file');
  });

  it('is frozen', () => {
    const c = resolveConnection({}, { HOME: home }, dir);
    assert.ok(Object.isFrozen(c));
  });

  it('refuses the retired shared names with a hint naming the NKCTL_ variable, even with every flag given', () => {
    const flags = { server: 'https://flag.example:3', token: 'tok-flag' };
    for (const [old, replacement] of [['NODEKEEPER_CONFIG', 'NKCTL_CONFIG'], ['NODEKEEPER_SERVER', 'NKCTL_SERVER'], ['NODEKEEPER_TOKEN', 'NKCTL_TOKEN'], ['NODEKEEPER_CA', 'NKCTL_CA']] as const) {
      assert.throws(() => resolveConnection(flags, { HOME: home, [old]: join(home, '.config', 'nodekeeper', 'nkctl.yaml') }, dir), (err: AppError) => {
        assert.equal(err.code, 'NK_CLI_ENV_RETIRED');
        assert.match(err.message, new RegExp(`^${old} is no longer read: nkctl reads ${replacement} instead`));
        assert.equal(exitCodeFor(err), 1);
        return true;
      }, old);
    }
    // Set but empty is still set: unsetting it is the fix.
    assert.throws(() => resolveConnection(flags, { HOME: home, NODEKEEPER_CONFIG: '' }, dir), /NODEKEEPER_CONFIG is no longer read/);
  });

  it("ignores the agent's and the coordinator's own variables", () => {
    const env = { HOME: home, NODEKEEPER_AGENT_CONFIG: '/nonexistent/agent.yaml', NODEKEEPER_COORDINATOR_CONFIG: '/nonexistent/coordinator.yaml', NODEKEEPER_AGENT_TOKEN: 'not-mine' };
    const c = resolveConnection({}, env, dir);
    assert.equal(c.token, 'tok-home');
  });
});

describe('bad settings', () => {
  it('a missing explicit config file is named', () => {
    fails(() => resolveConnection({ config: 'nope.yaml' }, { HOME: home }, dir), 'NK_CLI_FILE_UNREADABLE', join(dir, 'nope.yaml'), 'no such file');
  });

  it('a missing default config file is fine, but then there is no server', () => {
    fails(() => resolveConnection({}, { HOME: join(dir, 'empty-home') }, dir), 'NK_CLI_BAD_SERVER', 'no server configured');
  });

  for (const [name, text, ...parts] of [
    ['not YAML', 'server: [unclosed\n', 'not valid YAML'],
    ['a list', '- server\n', 'expected a mapping'],
    ['wrong type', 'server: 42\n', 'field "server" must be a non-empty string'],
    ['unknown field', 'server: https://x:1\ntokn: abc\n', 'unknown field "tokn"'],
    ['both token forms', 'token: a\ntokenFile: b\n', '"token" and "tokenFile" are mutually exclusive'],
    ['bad boolean', 'insecureSkipTLSVerify: yes please\n', 'field "insecureSkipTLSVerify" must be true or false'],
  ] as const) {
    it(`config file with ${name} is rejected naming the file and the field`, () => {
      const path = write(join(dir, `bad-${name.replace(/ /g, '-')}.yaml`), text);
      fails(() => resolveConnection({ config: path }, { HOME: home }, dir), 'NK_CLI_BAD_CONFIG', `invalid config file ${path}`, ...parts);
    });
  }

  it('rejects a server that is not an http(s) URL', () => {
    fails(() => resolveConnection({ server: 'ftp://x' }, { HOME: home }, dir), 'NK_CLI_BAD_SERVER', 'must be an https:// or http:// URL');
    fails(() => resolveConnection({ server: 'not a url' }, { HOME: home }, dir), 'NK_CLI_BAD_SERVER', 'is not a URL');
  });

  it('rejects --token with --token-file, and an unreadable CA', () => {
    fails(() => resolveConnection({ token: 'a', tokenFile: 'b' }, { HOME: home }, dir), 'NK_CLI_USAGE', 'mutually exclusive');
    fails(() => resolveConnection({ ca: 'missing.pem' }, { HOME: home }, dir), 'NK_CLI_FILE_UNREADABLE', 'CA file');
  });

  it('requires a credential', () => {
    fails(() => resolveConnection({ server: 'https://x:1' }, { HOME: join(dir, 'empty-home') }, dir), 'NK_CLI_NO_CREDENTIAL', '--token');
  });

  it('rejects a bad --request-timeout', () => {
    fails(() => resolveConnection({ requestTimeout: '10' }, { HOME: home }, dir), 'NK_CLI_BAD_DURATION', '--request-timeout');
  });
});
