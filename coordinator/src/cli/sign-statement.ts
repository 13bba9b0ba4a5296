/**
 * The signing side of install statements (packages/protocol install-statement.ts): what
 * `nkctl artifact push --sign`, `nkctl apply --sign-key` and `nkctl sign` put in an
 * artifact's `signature`. An agent with trusted keys installs only what a key signed:
 * the package, the version, the artifact's sha256 and size, and the manifest it installs
 * with (the entry's own, else the built-in one), as the coordinator will send them.
 */
import { sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse } from 'yaml';
import { installStatement, PackageManifest, type InstallStatementInput } from '@nodekeeper/protocol';
import { manifestFor } from '../packages/manifests.ts';
import { CliErrorCode, usageError } from './cli-errors.ts';

/** base64 ed25519 signature over the statement, as agents verify it. */
export function signInstallStatement(input: InstallStatementInput, key: KeyObject): string {
  return sign(null, Buffer.from(installStatement(input), 'utf8'), key).toString('base64');
}

const manifestCheck = TypeCompiler.Compile(PackageManifest);

/** A PackageManifest from a YAML or JSON file (`artifact push --manifest`); NK_CLI_BAD_MANIFEST otherwise. */
export function loadManifestFile(path: string): PackageManifest {
  let value: unknown;
  try {
    value = parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw usageError(CliErrorCode.badManifest, `cannot read the package manifest ${path}: ${(cause as Error).message}`, { cause });
  }
  if (!manifestCheck.Check(value)) {
    const e = manifestCheck.Errors(value).First();
    throw usageError(CliErrorCode.badManifest, `${path} is not a package manifest: ${e?.path || '/'}: ${e?.message ?? 'does not match'}`);
  }
  return value;
}

/** The manifest a package installs with: `own`, else the built-in one; NK_CLI_USAGE when neither. */
export function signedManifest(name: string, own: PackageManifest | undefined): PackageManifest {
  const m = manifestFor(name, own);
  if (m === null) throw usageError(CliErrorCode.usage, `"${name}" is not a built-in package: give its manifest (--manifest FILE, or manifest: in the entry) to sign it`);
  return m;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A copy of a ClusterPackageVersion object with every package entry's
 * `artifact.signature` set over its statement. Entries that are not well formed are
 * left alone (the coordinator refuses them with their path).
 */
export function signClusterPackageVersion(obj: Record<string, unknown>, key: KeyObject): Record<string, unknown> {
  const spec = obj['spec'];
  if (!isObject(spec) || !Array.isArray(spec['packages'])) return obj;
  const packages = spec['packages'].map((p: unknown) => {
    if (!isObject(p) || typeof p['name'] !== 'string' || typeof p['version'] !== 'string' || !isObject(p['artifact'])) return p;
    const a = p['artifact'];
    if (typeof a['sha256'] !== 'string' || typeof a['size'] !== 'number') return p;
    const manifest = signedManifest(p['name'], manifestCheck.Check(p['manifest']) ? p['manifest'] : undefined);
    const signature = signInstallStatement({ package: p['name'], version: p['version'], artifact: { sha256: a['sha256'], size: a['size'] }, manifest }, key);
    return { ...p, artifact: { ...a, signature } };
  });
  return { ...obj, spec: { ...spec, packages } };
}
