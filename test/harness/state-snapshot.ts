/**
 * What a coordinator holds, read from outside while it runs: every row of every table
 * of its SQLite file (but the batched last-seen column, which heartbeats move), the host
 * registration file and the artifact files. Two equal snapshots mean nothing was
 * changed; `diff` says what was.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export interface Snapshot {
  readonly tables: ReadonlyMap<string, string>;
  readonly files: string;
}

export class StateProbe {
  private readonly db: Database.Database;
  private readonly dataDir: string;
  private readonly ignore: ReadonlySet<string>;

  /** `ignoreTables`: tables left out of every snapshot (say why where you pass them). */
  constructor(dataDir: string, ignoreTables: readonly string[] = []) {
    this.dataDir = dataDir;
    // A machine's last-seen time moves with every message it sends: not a change of state.
    this.ignore = new Set([...ignoreTables, 'machine_seen']);
    this.db = new Database(path.join(dataDir, 'state.db'), { readonly: true, fileMustExist: true });
  }

  snapshot(): Snapshot {
    const tables = new Map<string, string>();
    const names = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
    // One read transaction: the tables agree with each other.
    this.db.transaction(() => {
      for (const { name } of names.filter((n) => !this.ignore.has(n.name))) {
        const rows = this.db.prepare(`SELECT * FROM "${name}"`).all() as Array<Record<string, unknown>>;
        tables.set(name, JSON.stringify(rows));
      }
    })();
    const reg = path.join(this.dataDir, 'host-registration.json');
    const artifacts = path.join(this.dataDir, 'artifacts');
    const files = JSON.stringify({
      registration: existsSync(reg) ? readFileSync(reg, 'utf8') : null,
      artifacts: existsSync(artifacts) ? readdirSync(artifacts, { recursive: true }).map(String).sort() : [],
    });
    return { tables, files };
  }

  /** Empty when equal; else the tables (and files) that differ, with a short excerpt. */
  static diff(a: Snapshot, b: Snapshot): string {
    const out: string[] = [];
    for (const name of new Set([...a.tables.keys(), ...b.tables.keys()])) {
      const x = a.tables.get(name);
      const y = b.tables.get(name);
      if (x === y) continue;
      const rows = (t: string | undefined) => new Set((JSON.parse(t ?? '[]') as unknown[]).map((r) => JSON.stringify(r)));
      const before = rows(x);
      const after = rows(y);
      const gone = [...before].filter((r) => !after.has(r));
      const added = [...after].filter((r) => !before.has(r));
      out.push(`table ${name}: removed ${gone.length} row(s) ${gone.slice(0, 3).map(excerpt).join(' ')}; added ${added.length} row(s) ${added.slice(0, 3).map(excerpt).join(' ')}`);
    }
    if (a.files !== b.files) out.push(`files: ${excerpt(a.files)} -> ${excerpt(b.files)}`);
    return out.join('\n');
  }

  /**
   * Waits until the state stops moving: unchanged for `quietMs` (longer than the
   * controllers' tick), at most `maxMs`. Returns the settled snapshot.
   */
  async settle(quietMs: number, maxMs = 10_000): Promise<Snapshot> {
    const deadline = Date.now() + maxMs;
    let last = this.snapshot();
    let since = Date.now();
    while (Date.now() - since < quietMs) {
      if (Date.now() > deadline) throw new Error(`the coordinator's state kept changing for ${maxMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
      const next = this.snapshot();
      if (StateProbe.diff(last, next) !== '') {
        last = next;
        since = Date.now();
      }
    }
    return last;
  }

  close(): void {
    this.db.close();
  }
}

function excerpt(s: string | undefined): string {
  if (s === undefined) return '(absent)';
  return s.length > 400 ? `${s.slice(0, 200)} ... ${s.slice(-200)}` : s;
}
