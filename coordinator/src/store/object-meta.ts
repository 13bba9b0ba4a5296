/**
 * Kubernetes-style object metadata of every stored kind: uid, generation,
 * resourceVersion and creation time, kept in the kind's own table (migration 10). The
 * triggers of that migration stamp `resource_version` on every stored change from one
 * store-wide counter, so no writer can forget to; these functions only read.
 */
import type { ObjectMeta } from '../model/object-meta.ts';
import type { StoreContext } from './context.ts';

/** The kinds the API serves as objects, by the lower-case name used in events and errors. */
export const OBJECT_KINDS = ['clusterpackageversion', 'rollout', 'remediationrule', 'machine', 'token', 'artifact'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** What metadata a stored object carries besides its name (a domain type: model/object-meta.ts). */
export type { ObjectMeta } from '../model/object-meta.ts';

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

/**
 * A connection-local log of machine stamps (resource version -> name), kept by a TEMP
 * trigger on the stamp itself: no schema change, nothing stored, gone when the
 * connection closes. The watch hub asks for the machines changed since the last version
 * it saw four times a second; answering from the table meant a scan of every machine row
 * (with its report) whenever any machine changed, O(fleet) a tick; the log is a range read
 * of what changed. It sees this connection's writes only, which is every write the
 * coordinator makes (one process, one connection, the store's lock). Started by the
 * first changedSince('machine'), so a store nobody watches (tools, benchmarks) keeps no
 * log that nobody empties.
 */
function startStampLog(ctx: StoreContext, after: number): boolean {
  const columns = ctx.db.pragma('table_info(machines)') as Array<{ name: string }>;
  if (!columns.some((c) => c.name === 'resource_version')) return false; // a store before migration 10 (tests of old schemas)
  ctx.db.exec(`
    CREATE TEMP TABLE IF NOT EXISTS machine_stamps (rv INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TEMP TRIGGER IF NOT EXISTS machine_stamps_log AFTER UPDATE OF resource_version ON main.machines
      WHEN NEW.resource_version IS NOT OLD.resource_version
      BEGIN INSERT OR REPLACE INTO machine_stamps (rv, name) VALUES (NEW.resource_version, NEW.name); END;`);
  // Seeded with what the table says changed after `after`: asked again from there (a hub
  // tick that failed), the log answers as the table would.
  ctx.db.prepare('INSERT OR REPLACE INTO temp.machine_stamps (rv, name) SELECT resource_version, name FROM machines WHERE resource_version > ?').run(after);
  return true;
}

/** Connections whose stamp log runs. */
const stampLogs = new WeakSet<StoreContext>();

/**
 * Names of the objects of one kind stored or changed after resource version `after`
 * (watch/hub.ts). Machines: the first call starts the stamp log, seeded from one scan of
 * the table; every call reads the log, and forgets the stamps at or below `after`: the
 * one caller asks with a version that never goes back.
 */
export function changedSince(ctx: StoreContext, kind: ObjectKind, after: number): string[] {
  if (kind === 'machine') {
    if (!stampLogs.has(ctx) && startStampLog(ctx, after)) stampLogs.add(ctx);
    if (stampLogs.has(ctx)) {
      const names = (ctx.stmt('SELECT DISTINCT name FROM temp.machine_stamps WHERE rv > ?').all(after) as Array<{ name: string }>).map((r) => r.name);
      ctx.stmt('DELETE FROM temp.machine_stamps WHERE rv <= ?').run(after);
      return names;
    }
  }
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
