/**
 * The one way nodekeeper's programs read options: defaults (the caller's), then a YAML
 * config file (`--config` or <PREFIX>CONFIG; keys are the flags in camelCase), then
 * <PREFIX><FLAG> environment variables, then flags. Every fault is AppError
 * NK_CONFIG_INVALID naming the option; unknown options are refused, never ignored.
 *
 * Each program has a prefix of its own (ENV_PREFIX): the agent, the coordinator and
 * nkctl share flag names (server, token, insecure, log-level, allow-install-path), and
 * one shared NODEKEEPER_ prefix made a shell set up for one program configure another
 * (issue 11: `export NODEKEEPER_CONFIG=nkctl.yaml` made a coordinator started in that
 * shell read nkctl's file; an exported nkctl token became an agent's bootstrap token).
 * The old shared names are refused with NK_CONFIG_ENV_RETIRED naming the new variable,
 * never silently ignored: a setting that quietly stopped applying is worse than a stop.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AppError } from './app-error.ts';

export const configError = (message: string, cause?: unknown): AppError =>
  new AppError('NK_CONFIG_INVALID', message, cause === undefined ? {} : { cause });

/** Each program's environment prefix; its config file variable is `<prefix>CONFIG`. */
export const ENV_PREFIX = {
  'nodekeeper-agent': 'NODEKEEPER_AGENT_',
  'nodekeeper-coordinator': 'NODEKEEPER_COORDINATOR_',
  nkctl: 'NKCTL_',
} as const;
export type ProgramName = keyof typeof ENV_PREFIX;

/** The prefix every program shared before issue 11; `NODEKEEPER_CONFIG` and `NODEKEEPER_<FLAG>` are retired. */
export const RETIRED_ENV_PREFIX = 'NODEKEEPER_';

/** `log-level` -> `LOG_LEVEL`. */
export const envSuffix = (flag: string): string => flag.toUpperCase().replace(/-/g, '_');

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * The first retired variable set in `env` among `NODEKEEPER_<suffix>` for `suffixes`
 * (CONFIG included by the caller), with the message that names the program's own
 * variable instead; null when none is set. "Set" means present, even empty: unsetting
 * it is the fix the message asks for. Pure, so nkctl (whose errors are its own) uses it too.
 */
export function retiredEnvProblem(program: ProgramName, suffixes: readonly string[], env: Readonly<Record<string, string | undefined>>): { variable: string; replacement: string; message: string } | null {
  for (const suffix of suffixes) {
    const variable = `${RETIRED_ENV_PREFIX}${suffix}`;
    if (env[variable] === undefined) continue;
    const replacement = `${ENV_PREFIX[program]}${suffix}`;
    const others = suffix === 'CONFIG'
      ? ` (each program has its own: ${Object.values(ENV_PREFIX).map((p) => `${p}CONFIG`).join(', ')})`
      : '';
    return {
      variable,
      replacement,
      message: `${variable} is no longer read: ${program} reads ${replacement} instead${others}; rename or unset ${variable} (nothing was changed)`,
    };
  }
  return null;
}

/**
 * Collects raw option values (camelCase keys) by precedence. `spec` must have `config`
 * and `help`; flags marked `multiple` take comma-separated lists from the environment.
 * Throws NK_CONFIG_ENV_RETIRED when a retired NODEKEEPER_ variable of this program is
 * set (not for --help, which must always work).
 */
export function layeredOptions(
  spec: ParseArgsOptionsConfig,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  usage: string,
  program: 'nodekeeper-agent' | 'nodekeeper-coordinator',
): { raw: Record<string, unknown>; help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false });
  } catch (err) {
    throw configError(`${(err as Error).message}\n\n${usage}`, err);
  }
  const flags = parsed.values as Record<string, unknown>;
  if (flags['help'] === true) return { raw: {}, help: true };
  const prefix = ENV_PREFIX[program];
  const options = Object.keys(spec).filter((k) => k !== 'config' && k !== 'help');
  // NODEKEEPER_AGENT_X is the agent's; as a retired name it would refuse the agent's own variables.
  for (const k of options) if (/^(agent|coordinator)-/.test(k)) throw new TypeError(`flag --${k}: its retired name ${RETIRED_ENV_PREFIX}${envSuffix(k)} would clash with another program's prefix`);
  const retired = retiredEnvProblem(program, ['CONFIG', ...options.map(envSuffix)], env);
  if (retired !== null) throw new AppError('NK_CONFIG_ENV_RETIRED', retired.message, { context: { variable: retired.variable, replacement: retired.replacement } });
  const raw: Record<string, unknown> = {};
  const file = (flags['config'] as string | undefined) ?? env[`${prefix}CONFIG`];
  if (file !== undefined) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw configError(`cannot read config file ${file}: ${(err as Error).message}`, err);
    }
    if (doc != null && (typeof doc !== 'object' || Array.isArray(doc))) throw configError(`config file ${file} must be a YAML mapping`);
    Object.assign(raw, doc ?? {});
  }
  for (const key of options) {
    const v = env[`${prefix}${envSuffix(key)}`];
    if (v !== undefined) raw[camel(key)] = spec[key]?.multiple === true ? v.split(',') : v;
  }
  for (const [key, value] of Object.entries(flags)) {
    if (key !== 'config' && key !== 'help' && value !== undefined) raw[camel(key)] = value;
  }
  const known = new Set(options.map(camel));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw configError(`unknown option "${key}" (config file keys are the flags in camelCase)`);
  }
  return { raw, help: false };
}
