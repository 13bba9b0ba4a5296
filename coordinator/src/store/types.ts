/**
 * The coordinator's records as the store keeps them. The domain types moved to model/
 * (issue 14); they are re-exported here until every importer outside the coordinator's
 * own decision modules (api/, server/, cli/) moves too. Import them from model/.
 */
export type { Condition, Liveness, LivenessState, MachineRecord, PackageOverride } from '../model/machine.ts';
export type { ArtifactRecord, ClusterPackageVersionRecord, PackageDefault, UpdateStrategyInput } from '../model/packages.ts';
export type { CommandRecord, CommandState } from '../model/commands.ts';
export type { ApiCredentialRecord, ApiRole, EventRecord, RolloutRecord, TokenRecord } from '../model/records.ts';
