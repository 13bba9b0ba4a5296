/**
 * kubeadm's CA pin: `sha256:<hex>` of the DER SubjectPublicKeyInfo of the CA
 * certificate (`kubeadm join --discovery-token-ca-cert-hash`). The coordinator prints
 * it; agents check the CA they are shown against it before trusting anything else.
 */
import { createHash, X509Certificate } from 'node:crypto';

export function caCertHash(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}
