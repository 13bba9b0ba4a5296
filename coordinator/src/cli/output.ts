/**
 * Machine-readable output (`-o json|yaml|name`) and the output flag's validation.
 */
import { stringify as stringifyYaml } from 'yaml';
import { CliErrorCode, usageError } from './cli-errors.ts';

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name';

/** Check an `-o` value against the formats a command supports. */
export function parseOutput(value: string | undefined, allowed: readonly OutputFormat[]): OutputFormat {
  if (value === undefined || value === '') return 'table';
  const v = value as OutputFormat;
  if (v !== 'table' && allowed.includes(v)) return v;
  const list = allowed.filter((a) => a !== 'table').join(', ');
  throw usageError(CliErrorCode.usage, `unsupported output format "${value}" (allowed: ${list})`);
}

/** JSON as kubectl prints it: two-space indent, trailing newline. */
export function toJson(obj: unknown): string {
  return JSON.stringify(obj, null, 2) + '\n';
}

/** YAML that parses back to the same object (no anchors or aliases for repeated values). */
export function toYaml(obj: unknown): string {
  return stringifyYaml(obj, { aliasDuplicateObjects: false, lineWidth: 0 });
}
