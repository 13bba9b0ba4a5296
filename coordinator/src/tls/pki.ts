/**
 * The coordinator's TLS material. On first start it makes its own CA and a serving
 * certificate signed by it (ECDSA P-256); agents pin the CA by the sha256 of its
 * SubjectPublicKeyInfo, as `kubeadm join --discovery-token-ca-cert-hash` does, so no
 * certificate needs to be copied to nodes by hand. Operators may bring their own
 * certificate and key instead.
 */
import { createPrivateKey, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs this polyfill.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { AppError, caCertHash } from '@nodekeeper/common';

// The library is typed against the DOM's WebCrypto; Node's is the same API.
type KeyPair = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
type Key = KeyPair['privateKey'];
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
/** Lifetime of a generated serving certificate (--tls-serving-lifetime). */
export const DEFAULT_SERVING_LIFETIME_MS = 365 * DAY;
/**
 * The serving certificate is re-issued when less than this fraction of its lifetime is
 * left (or it lacks a name): a third, as cert-manager renews at two thirds by default, so
 * a renewal that fails has a long margin of retries before anything expires.
 */
const RENEW_WHEN_LEFT = 1 / 3;

export interface TlsMaterial {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** `sha256:<hex>` of the CA's SubjectPublicKeyInfo, for agents to pin. */
  readonly caHash: string;
}

function writeSecure(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data, { mode });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

async function exportKey(key: Key): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<Key> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return (await webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign'])) as unknown as Key;
}

async function makeCa(now: Date): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as unknown as KeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=nodekeeper-ca',
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 3650 * DAY),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

async function makeServing(caCertPem: string, caKeyPem: string, names: readonly string[], now: Date, lifetimeMs: number) {
  const caCert = new x509.X509Certificate(caCertPem);
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as unknown as KeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=nodekeeper-coordinator',
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + lifetimeMs),
    publicKey: keys.publicKey,
    signingKey: await importKey(caKeyPem),
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? 'ip' : 'dns', value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/**
 * Why the serving certificate on disk must be re-issued, or null when it is good:
 * another CA, a key that does not match, little lifetime left, or a name missing (an
 * --advertise-url or --tls-name added since it was made).
 */
export function servingProblem(certPem: string, keyPem: string, caPem: string, names: readonly string[], now: Date, lifetimeMs: number): string | null {
  const cert = new NodeX509(certPem);
  if (!cert.checkIssued(new NodeX509(caPem))) return 'not issued by the current CA';
  // The key is written before the certificate: a crash in between leaves a pair that does not match.
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'its key does not match';
  if (new Date(cert.validTo).getTime() - now.getTime() < lifetimeMs * RENEW_WHEN_LEFT) return `less than a third of its lifetime left (valid to ${cert.validTo})`;
  // checkIP/checkHost compare parsed names: the SAN text spells ::1 as 0:0:0:0:0:0:0:1,
  // so a text match re-issued the certificate at every start.
  const missing = names.filter((n) => (isIP(n) ? cert.checkIP(n) : cert.checkHost(n, { wildcards: false, subject: 'never' })) === undefined);
  return missing.length === 0 ? null : `names missing from it: ${missing.join(', ')}`;
}

/**
 * Loads or creates the CA and serving certificate under `dir` (ca.crt, ca.key,
 * server.crt, server.key; keys mode 0600). The serving certificate covers `names`
 * (DNS names and IPs), lasts `servingLifetimeMs`, and is re-issued when names are added
 * or less than a third of that lifetime is left. Called at start and then on a timer
 * (tls/cert-renewer.ts), so a long-running coordinator renews it in place.
 */
export async function ensurePki(
  dir: string, names: readonly string[], now = new Date(), servingLifetimeMs = DEFAULT_SERVING_LIFETIME_MS,
  /** Told each time a serving certificate is issued, and why (for the log). */
  issued?: (why: string) => void,
): Promise<TlsMaterial> {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const caCrt = join(dir, 'ca.crt');
    const caKey = join(dir, 'ca.key');
    if (!existsSync(caCrt) || !existsSync(caKey)) {
      const ca = await makeCa(now);
      writeSecure(caKey, ca.keyPem, 0o600);
      writeSecure(caCrt, ca.certPem, 0o644);
    }
    const caPem = readFileSync(caCrt, 'utf8');
    const caKeyPem = readFileSync(caKey, 'utf8');
    const srvCrt = join(dir, 'server.crt');
    const srvKey = join(dir, 'server.key');
    const why = !existsSync(srvCrt) || !existsSync(srvKey) ? 'none yet' : servingProblem(readFileSync(srvCrt, 'utf8'), readFileSync(srvKey, 'utf8'), caPem, names, now, servingLifetimeMs);
    if (why !== null) {
      const srv = await makeServing(caPem, caKeyPem, names, now, servingLifetimeMs);
      writeSecure(srvKey, srv.keyPem, 0o600);
      writeSecure(srvCrt, srv.certPem, 0o644);
      issued?.(why);
    }
    return { caPem, certPem: readFileSync(srvCrt, 'utf8'), keyPem: readFileSync(srvKey, 'utf8'), caHash: caCertHash(caPem) };
  } catch (err) {
    throw new AppError('NK_TLS_SETUP_FAILED', `cannot prepare TLS material in ${dir}: ${(err as Error).message}`, { cause: err, context: { dir } });
  }
}

/** Loads operator-provided certificate, key and CA files. */
export function loadPki(files: { certFile: string; keyFile: string; caFile: string }): TlsMaterial {
  try {
    const caPem = readFileSync(files.caFile, 'utf8');
    return { caPem, certPem: readFileSync(files.certFile, 'utf8'), keyPem: readFileSync(files.keyFile, 'utf8'), caHash: caCertHash(caPem) };
  } catch (err) {
    throw new AppError('NK_TLS_SETUP_FAILED', `cannot load TLS files: ${(err as Error).message}`, { cause: err, context: files });
  }
}
