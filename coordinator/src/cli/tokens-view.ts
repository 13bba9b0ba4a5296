/**
 * Bootstrap tokens for humans: the list as `kubeadm token list` shows it (TTL left,
 * uses, state) and the result of `token create` with a ready-to-run join command.
 */
import type { TokenCreated, Token as TokenObject } from '@nodekeeper/api';
import { humanDuration } from './duration.ts';
import { renderTable } from './table.ts';

/** Revoked beats Expired beats Exhausted; otherwise Active. */
export function tokenState(t: TokenObject, now: number): string {
  if (t.revoked) return 'Revoked';
  if (Date.parse(t.expiresAt) <= now) return 'Expired';
  if (t.used >= t.uses) return 'Exhausted';
  return 'Active';
}

/** The token table: ID, TTL left, expiry, uses, state, description. */
export function renderTokens(items: readonly TokenObject[], now: number): string {
  const rows = items.map((t) => {
    const left = Date.parse(t.expiresAt) - now;
    return [t.id, left > 0 ? humanDuration(left) : '<expired>', t.expiresAt, `${t.used}/${t.uses}`, tokenState(t, now), t.description];
  });
  return renderTable(['ID', 'TTL', 'EXPIRES', 'USES', 'STATE', 'DESCRIPTION'], rows);
}

/** The agent command line that joins a node with this token, pinning the CA when there is one. */
export function joinCommand(server: string, created: TokenCreated): string {
  const pin = created.caCertHash === null || created.caCertHash === undefined ? '' : ` --discovery-ca-hash ${created.caCertHash}`;
  return `nodekeeper-agent --server ${server} --token ${created.token}${pin}`;
}

/** What `nkctl token create` prints: the token, its limits, and how to join a node. */
export function renderTokenCreated(server: string, created: TokenCreated, now: number): string {
  const left = Date.parse(created.expiresAt) - now;
  const lines = [
    `Token:    ${created.token}`,
    `ID:       ${created.id}`,
    `Expires:  ${created.expiresAt}${Number.isNaN(left) ? '' : ` (in ${humanDuration(Math.max(0, left))})`}`,
    `Uses:     ${created.uses}`,
    '',
    'Join a node by running, on the node:',
    '',
    `  ${joinCommand(server, created)}`,
  ];
  if (created.caCertHash === null || created.caCertHash === undefined) {
    lines.push('', 'warning: the coordinator serves plain http; the agent cannot pin its identity.');
  }
  return lines.join('\n') + '\n';
}
