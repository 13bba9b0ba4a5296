/**
 * The local objects made from objects authored on the host (migration 12): kind, name,
 * the host object's uid and generation, and its spec as last applied.
 */
import type { StoreContext } from './context.ts';

export interface HostObjectLink {
  readonly kind: 'Rollout' | 'RemediationRule';
  readonly name: string;
  readonly hostUid: string;
  readonly generation: number;
  /** Canonical JSON of the host spec last applied. */
  readonly spec: string;
}

export function listHostObjects(ctx: StoreContext): HostObjectLink[] {
  return (ctx.stmt('SELECT kind, name, host_uid, generation, spec FROM host_objects ORDER BY kind, name').all() as Array<{ kind: HostObjectLink['kind']; name: string; host_uid: string; generation: number; spec: string }>)
    .map((r) => ({ kind: r.kind, name: r.name, hostUid: r.host_uid, generation: r.generation, spec: r.spec }));
}

export function putHostObject(ctx: StoreContext, link: HostObjectLink): void {
  ctx.tx(() => {
    ctx.stmt(`INSERT INTO host_objects (kind, name, host_uid, generation, spec, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (kind, name) DO UPDATE SET host_uid = excluded.host_uid, generation = excluded.generation, spec = excluded.spec, updated_at = excluded.updated_at`)
      .run(link.kind, link.name, link.hostUid, link.generation, link.spec, ctx.now());
  });
}

export function deleteHostObject(ctx: StoreContext, kind: HostObjectLink['kind'], name: string): void {
  ctx.tx(() => {
    ctx.stmt('DELETE FROM host_objects WHERE kind = ? AND name = ?').run(kind, name);
  });
}
