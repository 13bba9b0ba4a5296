/**
 * The ClusterPackageVersion's `updateStrategy` (issue 13, shape in the shared design):
 * the Rollout's strategy fields plus `paused`, `selector` and `onSupersede`, as a default
 * for every package or per package. The schema is the contract's (@nodekeeper/api; the
 * host CRD is generated from it); the convergence controller gives it meaning.
 */
export { UpdateStrategySchema, type UpdateStrategy } from '@nodekeeper/api';
