/**
 * One word for a machine's convergence (`nkctl get machines`' CONVERGED column): the
 * contract's (@nodekeeper/api), so the server, nkctl and the page say the same word.
 */
export { machineConverged } from '@nodekeeper/api';
