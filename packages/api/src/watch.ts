/**
 * The watch wire format (Kubernetes' watch, as JSON lines): `GET <list path>?watch=1
 * &resourceVersion=N` answers 200 and streams one WatchEvent per line. A BOOKMARK
 * carries the store-wide resourceVersion reached; an ERROR carries a Status (410
 * Expired when N is too old) and ends the stream.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ApiVersionField } from './meta.ts';

export const WATCH_EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'] as const;
export type WatchEventType = (typeof WATCH_EVENT_TYPES)[number];

export const Bookmark = Type.Object({ kind: Type.Literal('Bookmark'), apiVersion: ApiVersionField, metadata: Type.Object({ resourceVersion: Type.String() }) });
export type Bookmark = Static<typeof Bookmark>;

/** The Status of an ERROR event (metav1.Status). */
export const WatchStatus = Type.Object({ kind: Type.Literal('Status'), code: Type.Integer(), reason: Type.String(), message: Type.String() });
export type WatchStatus = Static<typeof WatchStatus>;

/** One line of a watch of objects of schema `object`. */
export function WatchEventOf<T extends TSchema>(object: T) {
  return Type.Union([
    Type.Object({ type: Type.Union([Type.Literal('ADDED'), Type.Literal('MODIFIED'), Type.Literal('DELETED')]), object }),
    Type.Object({ type: Type.Literal('BOOKMARK'), object: Bookmark }),
    Type.Object({ type: Type.Literal('ERROR'), object: WatchStatus }),
  ]);
}

/** A watch event of any object (the object's own schema is its list's item). */
export const WatchEvent = WatchEventOf(Type.Unknown());
export type WatchEvent = Static<typeof WatchEvent>;
