/**
 * Answers that are not objects: the error body of every failed call, and the Status of
 * a delete. Watch streams' ERROR events carry a Kubernetes-style Status (watch.ts).
 */
import { Type, type Static } from '@sinclair/typebox';

/** Error body of every failed API call: a stable code (docs/errors.md), a message, and the JSON path refused where there is one. */
export const ErrorBody = Type.Object({
  code: Type.String({ pattern: '^NK_[A-Z0-9_]+$' }),
  message: Type.String(),
  path: Type.Optional(Type.String()),
});
export type ErrorBody = Static<typeof ErrorBody>;

/** Answer of a delete of a Rollout or an Artifact (metav1.Status). */
export const DeleteStatus = Type.Object({
  kind: Type.Literal('Status'),
  status: Type.Literal('Success'),
  details: Type.Object({ kind: Type.String(), name: Type.String() }),
  deleted: Type.Literal(true),
});
export type DeleteStatus = Static<typeof DeleteStatus>;

/** Answer of deletes that name what went (`{name|id, deleted|revoked: true}`). */
export const Deleted = Type.Object({ name: Type.Optional(Type.String()), id: Type.Optional(Type.String()), deleted: Type.Optional(Type.Literal(true)), revoked: Type.Optional(Type.Literal(true)) });
export type Deleted = Static<typeof Deleted>;
