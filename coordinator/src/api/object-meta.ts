/**
 * Kubernetes object metadata as the API serves it, and the optimistic-concurrency
 * preconditions of `apply` (PUT). Pure: the store reads the metadata, routes decide.
 *
 * As in Kubernetes (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions),
 * a resourceVersion is an opaque string to compare for equality only; a body that names
 * one that is not the object's current one is refused with 409, and so is a body whose
 * `metadata.uid` names another object (Kubernetes' uid precondition).
 */
import type { Condition, ObjectMeta as ApiMeta } from '@nodekeeper/api';
import { AppError } from '@nodekeeper/common';
import type { ObjectMeta } from '../store/object-meta.ts';

/** The metadata fields every served object carries (besides its name and labels): the contract's. */
export type ApiObjectMeta = Omit<ApiMeta, 'name'>;

/** metav1.Condition as built here: the contract's Condition, always with its observedGeneration. */
export type ApiCondition = Condition & { readonly observedGeneration: number };

/** The stored metadata as API fields. */
export function apiMeta(meta: ObjectMeta): ApiObjectMeta {
  return { uid: meta.uid, generation: meta.generation, resourceVersion: meta.resourceVersion, creationTimestamp: new Date(meta.createdAt).toISOString() };
}

/** A condition with epoch-ms time as metav1.Condition. */
export function apiCondition(c: { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string; lastTransitionTime: number }, observedGeneration: number): ApiCondition {
  return { type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: new Date(c.lastTransitionTime).toISOString(), observedGeneration };
}

/** What a body may ask of the object it replaces. */
export interface Preconditions {
  readonly resourceVersion: string | null;
  readonly uid: string | null;
}

const DECIMAL = /^(0|[1-9][0-9]{0,18})$/;

/**
 * Reads `metadata.resourceVersion` and `metadata.uid` from an applied body.
 * NK_OBJECT_METADATA_INVALID when either is there but is not a decimal string / a string.
 */
export function readPreconditions(body: unknown, what: string): Preconditions {
  const metadata = typeof body === 'object' && body !== null ? (body as { metadata?: unknown }).metadata : undefined;
  if (metadata === undefined || metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return { resourceVersion: null, uid: null };
  const { resourceVersion, uid } = metadata as { resourceVersion?: unknown; uid?: unknown };
  if (resourceVersion !== undefined && resourceVersion !== null && (typeof resourceVersion !== 'string' || !DECIMAL.test(resourceVersion))) {
    throw new AppError('NK_OBJECT_METADATA_INVALID', `${what}: metadata.resourceVersion must be a decimal string such as "42" (as read from the object), got ${JSON.stringify(resourceVersion).slice(0, 64)}`);
  }
  if (uid !== undefined && uid !== null && (typeof uid !== 'string' || uid.length === 0 || uid.length > 64)) {
    throw new AppError('NK_OBJECT_METADATA_INVALID', `${what}: metadata.uid must be the object's uid string, got ${JSON.stringify(uid).slice(0, 64)}`);
  }
  return { resourceVersion: typeof resourceVersion === 'string' ? resourceVersion : null, uid: typeof uid === 'string' ? uid : null };
}

/**
 * Checks preconditions against the stored object (null: it does not exist yet).
 * NK_CONFLICT (409) naming the current resourceVersion or uid; nothing is written.
 */
export function checkPreconditions(pre: Preconditions, current: ObjectMeta | null, what: string): void {
  if (current === null) {
    if (pre.resourceVersion !== null || pre.uid !== null) {
      throw new AppError('NK_CONFLICT', `${what} does not exist, but the body names ${pre.uid !== null ? `uid ${pre.uid}` : `resourceVersion ${pre.resourceVersion}`} of an earlier one; drop metadata.resourceVersion and metadata.uid to create it`);
    }
    return;
  }
  if (pre.uid !== null && pre.uid !== current.uid) {
    throw new AppError('NK_CONFLICT', `${what}: precondition failed: uid in the body is ${pre.uid}, the object's uid is ${current.uid} (it was deleted and made again)`);
  }
  if (pre.resourceVersion !== null && pre.resourceVersion !== current.resourceVersion) {
    throw new AppError('NK_CONFLICT', `${what} was changed since you read it: resourceVersion in the body is ${pre.resourceVersion}, the current one is ${current.resourceVersion}; read it again and reapply`);
  }
}

/** The body without server-set metadata (what a create-or-update compares and stores). */
export function withoutServerFields<T>(body: T): T {
  if (typeof body !== 'object' || body === null) return body;
  const { metadata, status: _status, ...rest } = body as { metadata?: unknown; status?: unknown };
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return rest as T;
  const { uid: _u, resourceVersion: _r, generation: _g, creationTimestamp: _c, managedFields: _m, ...kept } = metadata as Record<string, unknown>;
  return { ...rest, metadata: kept } as T;
}
