/**
 * nkctl's connection settings, resolved once per run and frozen: flags beat NKCTL_*
 * environment variables, which beat the config file. The config file is looked up at
 * --config, then $NKCTL_CONFIG, then ~/.config/nodekeeper/nkctl.yaml (only the last may
 * be missing). This is the only place nkctl reads the environment. The names it shared
 * with the agent and the coordinator (NODEKEEPER_CONFIG, _SERVER, _TOKEN, _CA) are
 * refused with NK_CLI_ENV_RETIRED naming the NKCTL_ one (see config-layers.ts for why).
 *
 * Config file (YAML):
 *   server: https://coordinator.example:8443
 *   token: <api credential>        # or tokenFile: /path (relative to this file)
 *   ca: /path/to/ca.crt            # relative to this file
 *   insecureSkipTLSVerify: false
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { retiredEnvProblem } from '@nodekeeper/common';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { parseDuration } from './duration.ts';

/** Global flags as commander hands them over (absent when not given). */
export interface ConnectionFlags {
  readonly server?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly ca?: string;
  readonly insecureSkipTlsVerify?: boolean;
  readonly config?: string;
  readonly requestTimeout?: string;
}

export type Source = 'flag' | 'env' | 'file';

export interface ConnectionConfig {
  /** Base URL without a trailing slash, e.g. `https://10.0.0.1:8443`. */
  readonly server: string;
  readonly token: string;
  /** PEM of the CA to trust instead of the system's, or null. */
  readonly ca: string | null;
  readonly insecureSkipTlsVerify: boolean;
  readonly timeoutMs: number;
  /** The config file that was read, or null when none was. */
  readonly configFile: string | null;
  /** Where each setting came from, for error messages and tests. */
  readonly sources: { readonly server: Source; readonly token: Source; readonly ca: Source | null };
}

export const DEFAULT_TIMEOUT = '30s';
const FILE_FIELDS = ['server', 'token', 'tokenFile', 'ca', 'insecureSkipTLSVerify'] as const;

interface FileSettings {
  server?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  insecureSkipTLSVerify?: boolean;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw usageError(CliErrorCode.fileUnreadable, `cannot read ${what} ${path}: ${why}`, { cause, context: { path } });
  }
}

/** Which config file to read, and whether it must exist. */
function locateConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv): { path: string; required: boolean } {
  if (flags.config !== undefined) return { path: flags.config, required: true };
  const fromEnv = env['NKCTL_CONFIG'];
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, required: true };
  const home = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir();
  return { path: join(home, '.config', 'nodekeeper', 'nkctl.yaml'), required: false };
}

/** Parse and validate a config file's text; errors name the file and the field. */
export function parseConfigFile(text: string, path: string): FileSettings {
  const bad = (msg: string, cause?: unknown) =>
    usageError(CliErrorCode.badConfig, `invalid config file ${path}: ${msg}`, { cause, context: { path } });
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (cause) {
    throw bad(`not valid YAML: ${(cause as Error).message.split('\n')[0]}`, cause);
  }
  if (doc === null || doc === undefined) return {}; // An empty file sets nothing.
  if (typeof doc !== 'object' || Array.isArray(doc)) throw bad('expected a mapping of settings (server, token, ...)');
  const out: FileSettings = {};
  for (const [key, value] of Object.entries(doc)) {
    switch (key) {
      case 'server':
      case 'token':
      case 'tokenFile':
      case 'ca':
        if (typeof value !== 'string' || value.trim() === '') throw bad(`field "${key}" must be a non-empty string`);
        out[key] = value.trim();
        break;
      case 'insecureSkipTLSVerify':
        if (typeof value !== 'boolean') throw bad(`field "${key}" must be true or false`);
        out.insecureSkipTLSVerify = value;
        break;
      default:
        throw bad(`unknown field "${key}" (known fields: ${FILE_FIELDS.join(', ')})`);
    }
  }
  if (out.token !== undefined && out.tokenFile !== undefined) throw bad('fields "token" and "tokenFile" are mutually exclusive');
  return out;
}

/** A base URL nkctl can talk to, or a usage error saying why not. */
export function normaliseServer(raw: string, source: Source): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw usageError(CliErrorCode.badServer, `server "${raw}" (from ${source}) is not a URL; expected https://host:port`, { cause });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw usageError(CliErrorCode.badServer, `server "${raw}" (from ${source}) must be an https:// or http:// URL`);
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

function tokenFromFile(path: string): string {
  const token = readText(path, 'token file').trim();
  if (token === '') throw usageError(CliErrorCode.noCredential, `token file ${path} is empty`, { context: { path } });
  return token;
}

/**
 * Resolve the connection settings from flags, environment and config file. `cwd`
 * anchors relative flag paths; paths inside the config file are relative to the file.
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv, cwd: string): ConnectionConfig {
  if (flags.token !== undefined && flags.tokenFile !== undefined) {
    throw usageError(CliErrorCode.usage, '--token and --token-file are mutually exclusive');
  }
  const retired = retiredEnvProblem('nkctl', ['CONFIG', 'SERVER', 'TOKEN', 'CA'], env);
  if (retired !== null) throw usageError(CliErrorCode.envRetired, retired.message, { context: { variable: retired.variable, replacement: retired.replacement } });
  const located = locateConfig(flags, env);
  const configPath = resolve(cwd, located.path);
  let file: FileSettings = {};
  let configFile: string | null = null;
  let text: string | null = null;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (cause) {
    if (located.required || (cause as NodeJS.ErrnoException).code !== 'ENOENT') text = readText(configPath, 'config file');
  }
  if (text !== null) {
    file = parseConfigFile(text, configPath);
    configFile = configPath;
  }
  const fromFile = (p: string) => (isAbsolute(p) ? p : resolve(dirname(configPath), p));
  const envOf = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);

  // Server: flag > env > file.
  let server: { value: string; source: Source } | null = null;
  if (flags.server !== undefined) server = { value: flags.server, source: 'flag' };
  else if (envOf('NKCTL_SERVER') !== undefined) server = { value: envOf('NKCTL_SERVER') ?? '', source: 'env' };
  else if (file.server !== undefined) server = { value: file.server, source: 'file' };
  if (server === null) {
    throw usageError(CliErrorCode.badServer, 'no server configured: pass --server https://host:port, set NKCTL_SERVER, or write "server:" in ~/.config/nodekeeper/nkctl.yaml');
  }

  // Credential: one setting with two spellings per layer; a higher layer wins whichever spelling it uses.
  let token: { value: string; source: Source };
  if (flags.token !== undefined) token = { value: flags.token, source: 'flag' };
  else if (flags.tokenFile !== undefined) token = { value: tokenFromFile(resolve(cwd, flags.tokenFile)), source: 'flag' };
  else if (envOf('NKCTL_TOKEN') !== undefined) token = { value: envOf('NKCTL_TOKEN') ?? '', source: 'env' };
  else if (file.token !== undefined) token = { value: file.token, source: 'file' };
  else if (file.tokenFile !== undefined) token = { value: tokenFromFile(fromFile(file.tokenFile)), source: 'file' };
  else {
    throw usageError(CliErrorCode.noCredential, 'no API credential: pass --token or --token-file, set NKCTL_TOKEN, or write "token:" or "tokenFile:" in the nkctl config file');
  }
  if (token.value.trim() === '') throw usageError(CliErrorCode.noCredential, `the API credential from ${token.source} is empty`);

  let ca: { path: string; source: Source } | null = null;
  if (flags.ca !== undefined) ca = { path: resolve(cwd, flags.ca), source: 'flag' };
  else if (envOf('NKCTL_CA') !== undefined) ca = { path: resolve(cwd, envOf('NKCTL_CA') ?? ''), source: 'env' };
  else if (file.ca !== undefined) ca = { path: fromFile(file.ca), source: 'file' };

  const timeoutMs = parseDuration(flags.requestTimeout ?? DEFAULT_TIMEOUT, '--request-timeout');
  if (timeoutMs < 0) throw usageError(CliErrorCode.badDuration, `invalid --request-timeout "${flags.requestTimeout}": must not be negative`);

  return Object.freeze({
    server: normaliseServer(server.value, server.source),
    token: token.value.trim(),
    ca: ca === null ? null : readText(ca.path, 'CA file'),
    insecureSkipTlsVerify: flags.insecureSkipTlsVerify === true || file.insecureSkipTLSVerify === true,
    timeoutMs,
    configFile,
    sources: Object.freeze({ server: server.source, token: token.source, ca: ca?.source ?? null }),
  });
}
