/**
 * Building blocks of every API object: times, object and list metadata, conditions.
 * Shapes follow the Kubernetes API conventions
 * (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md).
 * Response schemas leave additional properties open, so a newer server does not break
 * an older client; request bodies close them.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { API_VERSION } from './version.ts';

/**
 * RFC 3339 time, as the server writes it (UTC, milliseconds). A pattern rather than
 * `format: date-time`: TypeBox checks formats only once registered, a global this pure
 * package does not touch.
 */
export const Time = Type.String({ maxLength: 40, pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$', description: 'RFC 3339 time' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
export const ApiVersionField = Type.Literal(API_VERSION);
export const Labels = Type.Record(Type.String(), Type.String());

/** The metadata fields every stored object carries besides its name (store/object-meta.ts). */
export const ObjectMetaFields = {
  uid: Type.String(),
  generation: Type.Integer({ minimum: 0 }),
  /** Opaque; compare for equality only. The store-wide counter at the object's last write. */
  resourceVersion: Type.String(),
  creationTimestamp: Time,
};
export const ObjectMeta = Type.Object({ name: Type.String(), ...ObjectMetaFields });
export type ObjectMeta = Static<typeof ObjectMeta>;

/** `metadata` of a list: the store-wide resourceVersion at the time of the list (watch from it). */
export const ListMeta = Type.Object({ resourceVersion: Type.Optional(Type.String()) });
export type ListMeta = Static<typeof ListMeta>;

export const ConditionStatus = Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]);

/** metav1.Condition. */
export const Condition = Type.Object({
  type: Type.String(),
  status: ConditionStatus,
  reason: Type.String(),
  message: Type.String(),
  lastTransitionTime: Time,
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type Condition = Static<typeof Condition>;

/** A list of `item` as `kind`, with list metadata. */
export function ListOf<T extends TSchema, K extends string>(kind: K, item: T) {
  return Type.Object({
    apiVersion: Type.Optional(ApiVersionField),
    kind: Type.Literal(kind),
    metadata: Type.Optional(ListMeta),
    items: Type.Array(item),
  });
}
