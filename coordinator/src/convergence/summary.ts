/**
 * One word for a machine's convergence (`nkctl get machines`' CONVERGED column). Kept
 * apart from status.ts so nkctl loads no schema compiler to print a table.
 */

/** `converged`, `updating`, `degraded` or `pending`: the worst of a machine's package states; `-` without any. */
export function machineConverged(packages: readonly { readonly state: string }[]): string {
  if (packages.length === 0) return '-';
  if (packages.some((p) => p.state === 'Degraded')) return 'degraded';
  if (packages.some((p) => p.state === 'Updating')) return 'updating';
  if (packages.some((p) => p.state === 'Pending')) return 'pending';
  return 'converged';
}
