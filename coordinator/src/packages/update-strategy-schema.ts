/**
 * The ClusterPackageVersion's `updateStrategy` (issue 13, shape in the shared design):
 * the Rollout's strategy fields plus `paused`, `selector` and `onSupersede`, as a default
 * for every package or per package. Only the schema lives here (the host CRD is
 * generated from it); the convergence controller gives it meaning.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StrategySchema } from '../rollout/spec.ts';

export const UpdateStrategySchema = Type.Object(
  {
    paused: Type.Optional(Type.Boolean()),
    /** Machines that follow the ClusterPackageVersion; absent: all. */
    selector: Type.Optional(Type.Object({ matchLabels: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 317 }), Type.String({ maxLength: 63 }), { maxProperties: 64 })) }, { additionalProperties: false })),
    /** What a newer generation does with what the older rollout changed. */
    onSupersede: Type.Optional(Type.Union([Type.Literal('Keep'), Type.Literal('Rollback')])),
    ...StrategySchema.properties,
  },
  { additionalProperties: false },
);
export type UpdateStrategy = Static<typeof UpdateStrategySchema>;
