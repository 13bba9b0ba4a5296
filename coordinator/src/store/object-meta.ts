/**
 * Kubernetes-style object metadata of every stored kind: uid, generation,
 * resourceVersion and creation time, kept in the kind's own table (migration 10). The
 * triggers of that migration stamp `resource_version` on every stored change from one
 * store-wide counter, so no writer can forget to; these functions only read.
 */
import type { StoreContext } from './context.ts';

/** The kinds the API serves as objects, by the lower-case name used in events and errors. */
export const OBJECT_KINDS = ['clusterpackageversion', 'rollout', 'remediationrule', 'machine', 'token', 'artifact'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** What metadata a stored object carries besides its name. */
export interface ObjectMeta {
  /** A UUID fixed when the row was created (or when migration 10 backfilled it). */
  readonly uid: string;
  /** Decimal string of the store-wide counter at this object's last stored change; compare for equality only. */
  readonly resourceVersion: string;
  /** Moves by one on every spec change, and only then. */
  readonly generation: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

const TABLES: Readonly<Record<ObjectKind, { table: string; key: string; created: string }>> = {
  clusterpackageversion: { table: 'cluster_package_version', key: 'name', created: 'created_at' },
  rollout: { table: 'rollouts', key: 'name', created: 'created_at' },
  remediationrule: { table: 'remediation_rules', key: 'name', created: 'created_at' },
  machine: { table: 'machines', key: 'name', created: 'enrolled_at' },
  token: { table: 'tokens', key: 'id', created: 'created_at' },
  artifact: { table: 'artifacts', key: 'sha256', created: 'created_at' },
};

interface MetaRow { key: string; uid: string | null; resource_version: number; generation: number; created: number | null }

function selectSql(kind: ObjectKind): string {
  const t = TABLES[kind];
  return `SELECT ${t.key} AS key, uid, resource_version, generation, ${t.created} AS created FROM ${t.table}`;
}

const toMeta = (r: MetaRow): ObjectMeta => ({
  // The triggers give every row a uid; '' only if a row escaped them (shown, never invented).
  uid: r.uid ?? '',
  resourceVersion: String(r.resource_version),
  generation: r.generation,
  createdAt: r.created ?? 0,
});

/** One object's metadata, or null when there is no such object. */
export function objectMeta(ctx: StoreContext, kind: ObjectKind, name: string): ObjectMeta | null {
  const row = ctx.stmt(`${selectSql(kind)} WHERE ${TABLES[kind].key} = ?`).get(name) as MetaRow | undefined;
  return row === undefined ? null : toMeta(row);
}

/** Every object's metadata of one kind, by name: one query for a whole list. */
export function objectMetas(ctx: StoreContext, kind: ObjectKind): Map<string, ObjectMeta> {
  return new Map((ctx.stmt(selectSql(kind)).all() as MetaRow[]).map((r) => [r.key, toMeta(r)]));
}

/** The store-wide resource version counter: the newest resourceVersion handed out. */
export function currentResourceVersion(ctx: StoreContext): string {
  const row = ctx.stmt(`SELECT value FROM maintenance WHERE name = 'resource_version'`).get() as { value: number } | undefined;
  return String(row?.value ?? 0);
}

/** Names of the objects of one kind stored or changed after resource version `after` (watch/hub.ts). */
export function changedSince(ctx: StoreContext, kind: ObjectKind, after: number): string[] {
  const t = TABLES[kind];
  return (ctx.stmt(`SELECT ${t.key} AS key FROM ${t.table} WHERE resource_version > ?`).all(after) as Array<{ key: string }>).map((r) => r.key);
}

/**
 * Moves the store-wide counter by one and returns the new value: the watch hub's version
 * for changes seen only in memory (a machine's liveness before the batcher flushes it),
 * so a version a list has already answered with is never reused for a later change.
 */
export function bumpResourceVersion(ctx: StoreContext): number {
  return ctx.tx(() => {
    ctx.stmt(`UPDATE maintenance SET value = value + 1 WHERE name = 'resource_version'`).run();
    return Number(currentResourceVersion(ctx));
  });
}
