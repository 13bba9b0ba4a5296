/**
 * The one way nodekeeper's programs read options: defaults (the caller's), then a YAML
 * config file (`--config` or NODEKEEPER_CONFIG; keys are the flags in camelCase), then
 * NODEKEEPER_<FLAG> environment variables, then flags. Every fault is AppError
 * NK_CONFIG_INVALID naming the option; unknown options are refused, never ignored.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AppError } from './app-error.ts';

export const configError = (message: string, cause?: unknown): AppError =>
  new AppError('NK_CONFIG_INVALID', message, cause === undefined ? {} : { cause });

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Collects raw option values (camelCase keys) by precedence. `spec` must have `config`
 * and `help`; flags marked `multiple` take comma-separated lists from the environment.
 */
export function layeredOptions(
  spec: ParseArgsOptionsConfig,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  usage: string,
): { raw: Record<string, unknown>; help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false });
  } catch (err) {
    throw configError(`${(err as Error).message}\n\n${usage}`, err);
  }
  const flags = parsed.values as Record<string, unknown>;
  const raw: Record<string, unknown> = {};
  const file = (flags['config'] as string | undefined) ?? env['NODEKEEPER_CONFIG'];
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
  const options = Object.keys(spec).filter((k) => k !== 'config' && k !== 'help');
  for (const key of options) {
    const v = env[`NODEKEEPER_${key.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined) raw[camel(key)] = spec[key]?.multiple === true ? v.split(',') : v;
  }
  for (const [key, value] of Object.entries(flags)) {
    if (key !== 'config' && key !== 'help' && value !== undefined) raw[camel(key)] = value;
  }
  const known = new Set(options.map(camel));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw configError(`unknown option "${key}" (config file keys are the flags in camelCase)`);
  }
  return { raw, help: flags['help'] === true };
}
