/**
 * What a trusted key signs for an install, in the spirit of TUF's targets metadata: not
 * just the artifact's digest, but the package, the version, the digest and size, and the
 * manifest that says where its files go. An agent with trusted keys verifies the ed25519
 * signature (`artifact.signature`) over the UTF-8 bytes of `installStatement(params)`,
 * so a manifest changed after signing (a new link, another service) is refused.
 *
 * The canonical form is RFC 8785 (JCS): object keys sorted by UTF-16 code unit, no
 * whitespace, strings and numbers as ECMAScript writes them, absent optional fields left
 * out. Any JCS implementation can rebuild the bytes a key signed.
 */
import canonicalize from 'canonicalize';

/** The statement's type tag (changes when its meaning does). */
export const INSTALL_STATEMENT_TYPE = 'https://nodekeeper.io/InstallStatement/v1';

/** Canonical JSON of `value` (RFC 8785, by the `canonicalize` library); TypeError when `value` is not JSON. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('canonical JSON needs a JSON value');
  return text;
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
