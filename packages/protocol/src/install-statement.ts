/**
 * What a trusted key signs for an install, in the spirit of TUF's targets metadata: not
 * just the artifact's digest, but the package, the version, the digest and size, and the
 * manifest that says where its files go. An agent with trusted keys verifies the ed25519
 * signature (`artifact.signature`) over the UTF-8 bytes of `installStatement(params)`,
 * so a manifest changed after signing (a new link, another service) is refused.
 *
 * The canonical form is defined once, here: JSON with object keys sorted by UTF-16 code
 * unit (as JavaScript sorts strings), no whitespace, strings as JSON.stringify writes
 * them, integers only, absent optional fields left out. That is RFC 8785 (JCS) for the
 * values a statement can hold.
 */

/** The statement's type tag (changes when its meaning does). */
export const INSTALL_STATEMENT_TYPE = 'https://nodekeeper.io/InstallStatement/v1';

/** Canonical JSON of `value` (see the module comment); throws TypeError on what it cannot hold. */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON holds safe integers only, got ${value}`);
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}

/** What an install statement covers (InstallParams without the URL and the signature). */
export interface InstallStatementInput {
  readonly package: string;
  readonly version: string;
  readonly artifact: { readonly sha256: string; readonly size: number };
  readonly manifest: object;
}

/** The exact text a trusted key signs for an install (the URL is not covered: mirrors may move it). */
export function installStatement(p: InstallStatementInput): string {
  return canonicalJson({
    _type: INSTALL_STATEMENT_TYPE,
    package: p.package,
    version: p.version,
    artifact: { sha256: p.artifact.sha256, size: p.artifact.size },
    manifest: p.manifest,
  });
}
