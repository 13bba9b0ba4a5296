/** Events: the append-only audit trail, as `/v1/machines/{name}/events` and `/v1/rollouts/{name}/events` serve it. */
import { Type, type Static } from '@sinclair/typebox';
import { ListOf, Time } from './meta.ts';

export const Event = Type.Object({
  id: Type.Integer({ minimum: 0 }),
  at: Time,
  /** `kind/name` of the object it is about, e.g. `machine/node-1`. */
  object: Type.String(),
  type: Type.Union([Type.Literal('Normal'), Type.Literal('Warning')]),
  reason: Type.String(),
  message: Type.String(),
});
export type Event = Static<typeof Event>;

export const EventList = ListOf('EventList', Event);
export type EventList = Static<typeof EventList>;
