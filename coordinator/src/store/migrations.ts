/**
 * The store's schema, as an ordered list of migrations. `PRAGMA user_version` records
 * the last one applied; each runs in its own IMMEDIATE transaction together with the
 * version bump, so a crash mid-migration leaves the file at the previous version.
 * Append new migrations; never edit one that has shipped.
 */
import type Database from 'better-sqlite3';
import { AppError } from '@nodekeeper/common';
import { StoreErrorCode } from './errors.ts';

export interface Migration {
  /** 1, 2, 3, ... in order, no gaps. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const migrations: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        description TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        max_uses    INTEGER NOT NULL CHECK (max_uses >= 1),
        used        INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= max_uses),
        revoked_at  INTEGER
      ) STRICT;

      CREATE TABLE machines (
        name              TEXT PRIMARY KEY,
        machine_id        TEXT NOT NULL,
        credential_id     TEXT NOT NULL UNIQUE,
        credential_hash   BLOB NOT NULL,
        labels            TEXT NOT NULL,  -- JSON object
        zone              TEXT,
        addresses         TEXT NOT NULL,  -- JSON array
        enrolled_at       INTEGER NOT NULL,
        enrolled_by_token TEXT REFERENCES tokens(id),
        revoked_at        INTEGER,
        -- status
        report            TEXT,           -- JSON NodeReport
        report_changed_at INTEGER,
        last_seen_at      INTEGER,
        liveness_state    TEXT NOT NULL CHECK (liveness_state IN ('Pending', 'Ready', 'NotReady', 'Unknown')),
        liveness_since    INTEGER NOT NULL,
        liveness_reason   TEXT NOT NULL,
        liveness_message  TEXT NOT NULL,
        conditions        TEXT NOT NULL DEFAULT '[]',  -- JSON Condition[]
        agent_version     TEXT,
        status_updated_at INTEGER
      ) STRICT;

      CREATE TABLE api_credentials (
        id          TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('admin', 'read-only')),
        description TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
      ) STRICT;

      CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        object  TEXT NOT NULL,
        type    TEXT NOT NULL CHECK (type IN ('Normal', 'Warning')),
        reason  TEXT NOT NULL,
        message TEXT NOT NULL
      ) STRICT;
      CREATE INDEX events_by_object ON events (object, id);
      -- The audit trail is append-only: the database itself refuses edits.
      CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
      CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

      CREATE TABLE observations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        machine     TEXT NOT NULL REFERENCES machines (name),
        at          INTEGER NOT NULL,
        component   TEXT NOT NULL,
        health      TEXT NOT NULL,
        version_raw TEXT,
        reason      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX observations_by_component ON observations (machine, component, id);
    `,
  },
  {
    version: 2,
    name: 'packages, artifacts, commands, rollouts',
    sql: `
      -- The cluster's ClusterPackageVersion: one object, kept whole (spec as JSON).
      CREATE TABLE cluster_package_version (
        name       TEXT PRIMARY KEY CHECK (name = 'cluster'),
        spec       TEXT NOT NULL,   -- JSON {packages: [...]}
        generation INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      -- Content-addressed artifacts; the bytes live in <dataDir>/artifacts/sha256/<hex>.
      CREATE TABLE artifacts (
        sha256     TEXT PRIMARY KEY,
        package    TEXT NOT NULL,
        version    TEXT NOT NULL,
        size       INTEGER NOT NULL,
        signature  TEXT,
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX artifacts_by_package ON artifacts (package, version);

      -- What the coordinator asked one agent to do; executed at most once per id.
      CREATE TABLE commands (
        id          TEXT PRIMARY KEY,
        machine     TEXT NOT NULL REFERENCES machines (name),
        kind        TEXT NOT NULL,
        params      TEXT NOT NULL,  -- JSON
        owner       TEXT,           -- e.g. rollout/<name>
        state       TEXT NOT NULL CHECK (state IN ('Pending', 'Sent', 'Running', 'Succeeded', 'Failed', 'TimedOut')),
        step        TEXT,
        message     TEXT NOT NULL DEFAULT '',
        result      TEXT,           -- JSON
        error       TEXT,           -- JSON {code, message}
        timeout_ms  INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        sent_at     INTEGER,
        finished_at INTEGER
      ) STRICT;
      CREATE INDEX commands_by_machine ON commands (machine, state);
      CREATE INDEX commands_by_owner ON commands (owner);

      CREATE TABLE rollouts (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,   -- JSON RolloutSpec (defaults applied)
        state      TEXT NOT NULL,   -- JSON RolloutState (the planner's)
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'per-machine package overrides',
    sql: `
      -- JSON {<package>: {version, artifact?, parameters?}}: this machine's pins over the cluster default.
      ALTER TABLE machines ADD COLUMN package_overrides TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 4,
    name: 'remediation',
    sql: `
      -- The remediation policy's persisted state (one row): ladders, storm, faults, switches.
      CREATE TABLE remediation (
        name       TEXT PRIMARY KEY CHECK (name = 'cluster'),
        state      TEXT NOT NULL,  -- JSON RemediationState
        faults     TEXT NOT NULL,  -- JSON {machine: FaultState}
        paused     INTEGER NOT NULL DEFAULT 0,
        dry_run    INTEGER NOT NULL DEFAULT 0,
        paused_machines TEXT NOT NULL DEFAULT '[]',
        updated_at INTEGER NOT NULL
      ) STRICT;
      -- Rules applied by operators; a fault without one uses the built-in default.
      CREATE TABLE remediation_rules (
        name       TEXT PRIMARY KEY,
        object     TEXT NOT NULL,  -- JSON RemediationRule object as applied
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 5,
    name: 'remediation state per machine',
    sql: `
      -- One row per machine, so a step that moves a few machines writes a few rows; the
      -- single row held every machine's ladder and faults as one JSON document, rewritten
      -- whole on any change (megabytes at thousands of machines).
      CREATE TABLE remediation_machines (
        machine TEXT PRIMARY KEY,
        state   TEXT NOT NULL  -- JSON MachineRemediation
      ) STRICT;
      CREATE TABLE remediation_faults (
        machine TEXT PRIMARY KEY,
        state   TEXT NOT NULL  -- JSON FaultState
      ) STRICT;
      INSERT INTO remediation_machines (machine, state)
        SELECT m.key, m.value FROM remediation AS r, json_each(r.state, '$.machines') AS m
        WHERE r.name = 'cluster' AND json_type(r.state, '$.machines') = 'object';
      INSERT INTO remediation_faults (machine, state)
        SELECT f.key, f.value FROM remediation AS r, json_each(r.faults) AS f
        WHERE r.name = 'cluster' AND json_type(r.faults) = 'object';
      -- What stays in the cluster row: the storm guard's state (NULL before the policy's
      -- first step) and the switches.
      ALTER TABLE remediation ADD COLUMN storm TEXT;  -- JSON StormState
      UPDATE remediation SET storm = json_extract(state, '$.storm') WHERE json_type(state, '$.storm') = 'object';
      ALTER TABLE remediation DROP COLUMN state;
      ALTER TABLE remediation DROP COLUMN faults;
    `,
  },
  {
    version: 6,
    name: 'machine keys and credential rotation',
    sql: `
      -- The machine's ed25519 public key (base64 of the 32 raw bytes): re-enrolling an
      -- enrolled machine needs a signature by it (or an admin reset). NULL for machines
      -- enrolled before keys existed, until their agent's next hello registers one.
      ALTER TABLE machines ADD COLUMN public_key TEXT;
      -- When the current credential stops being accepted (NULL: enrolled before
      -- expiry existed; such credentials are rotated at the next connection).
      ALTER TABLE machines ADD COLUMN credential_expires_at INTEGER;
      -- A credential sent over the live connection and not yet confirmed saved by the
      -- agent. Both are accepted until the agent confirms, or connects with the new one.
      ALTER TABLE machines ADD COLUMN next_credential_id TEXT;
      ALTER TABLE machines ADD COLUMN next_credential_hash BLOB;
      ALTER TABLE machines ADD COLUMN next_credential_expires_at INTEGER;
      -- Set by an admin reset: the next bootstrap-token enrollment of this name is
      -- accepted as the machine (a reinstalled node with a new key and machine-id).
      ALTER TABLE machines ADD COLUMN reset_at INTEGER;
      CREATE UNIQUE INDEX machines_next_credential ON machines (next_credential_id) WHERE next_credential_id IS NOT NULL;
    `,
  },
  {
    version: 7,
    name: 'retention and store health',
    sql: `
      -- Small values the store keeps for itself: the retention gate of the events
      -- trigger, and a counter that the health probe bumps (a real write to the disk).
      CREATE TABLE maintenance (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) STRICT;
      INSERT INTO maintenance (name, value) VALUES ('events_prune_open', 0), ('write_probe', 0);
      -- The audit trail stays append-only for everyone but retention, which opens the
      -- gate inside its own delete transaction and closes it before committing.
      DROP TRIGGER events_no_delete;
      CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        WHEN (SELECT value FROM maintenance WHERE name = 'events_prune_open') = 0
        BEGIN SELECT RAISE(ABORT, 'events are append-only; only retention prunes them'); END;
      -- Retention finds finished commands by age without a scan.
      CREATE INDEX commands_by_finished ON commands (finished_at) WHERE finished_at IS NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'event sink cursors',
    sql: `
      -- How far each consumer of the event log (Kubernetes Events, each notification
      -- webhook) has delivered: the id of the last event it is done with. Saved after
      -- delivery, so a kill -9 repeats at most what was in flight and loses nothing.
      CREATE TABLE sink_cursors (
        name       TEXT PRIMARY KEY,
        after_id   INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 9,
    name: 'reboot operations',
    sql: `
      -- One row per reboot of a machine (a reboot rollout's machine, a remediation's
      -- Reboot rung): its step and facts, so a restarted coordinator resumes it where it
      -- was and never sends a second reboot (reboot/driver.ts).
      CREATE TABLE reboots (
        id          TEXT PRIMARY KEY,
        machine     TEXT NOT NULL,
        owner       TEXT NOT NULL,
        state       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        finished_at INTEGER
      ) STRICT;
      CREATE INDEX reboots_open ON reboots (machine) WHERE finished_at IS NULL;
      CREATE INDEX reboots_by_owner ON reboots (owner);
    `,
  },
  {
    version: 10,
    name: 'object metadata: uid, generation, resourceVersion',
    sql: objectMetadataSql(),
  },
  {
    version: 11,
    name: 'convergence',
    sql: `
      -- The rollouts the converger created (convergence/), so a restarted coordinator
      -- knows them as its own and never creates a second one for one target.
      CREATE TABLE convergence_rollouts (
        name         TEXT PRIMARY KEY,
        package      TEXT NOT NULL,
        track        TEXT NOT NULL,
        generation   INTEGER NOT NULL,
        version      TEXT NOT NULL,
        spec_key     TEXT NOT NULL,
        paused_by_us INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL
      ) STRICT;
      -- A target RolloutController.create refused (skew, downgrade...): not retried until
      -- the target changes (a new generation, another pin).
      CREATE TABLE convergence_refusals (
        package  TEXT NOT NULL,
        track    TEXT NOT NULL,
        key      TEXT NOT NULL,
        code     TEXT NOT NULL,
        message  TEXT NOT NULL,
        at       INTEGER NOT NULL,
        PRIMARY KEY (package, track, key)
      ) STRICT;
      -- Each package's last recorded convergence state, so events are written on change only.
      CREATE TABLE convergence_packages (
        package    TEXT PRIMARY KEY,
        state      TEXT NOT NULL,
        reason     TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 12,
    name: 'objects pulled from the host',
    sql: `
      -- Which local Rollouts and RemediationRules were made from an object authored on the
      -- host (host/object-pull.ts): a local object of the same name without a row here is
      -- the operator's own, and the host may not take it over. spec is the host spec as
      -- last applied (canonical JSON), so an unchanged spec applies nothing.
      CREATE TABLE host_objects (
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        host_uid    TEXT NOT NULL,
        generation  INTEGER NOT NULL,
        spec        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
      ) STRICT;
    `,
  },
  {
    version: 13,
    name: 'fleet page sessions',
    sql: `
      -- Sign-in sessions of the fleet page (coordinator/src/ui/): a cookie exchanged for an
      -- API credential. Only the sha256 of the session secret is kept; the role is read
      -- from the credential at every request, so revoking it ends its sessions at once.
      CREATE TABLE ui_sessions (
        id_hash       BLOB PRIMARY KEY,
        credential_id TEXT NOT NULL REFERENCES api_credentials(id),
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);
    `,
  },
  {
    version: 14,
    name: 'last-seen times in a table of their own',
    sql: `
      -- The write batcher moves every connected machine's last-seen time once a minute
      -- (316 rows a second at 19,000 machines). In the machines row, each move rewrote
      -- the whole row, its report and conditions (2-4 KB), to the WAL and then the file;
      -- here a row is a name and an integer, about a hundred to a page.
      CREATE TABLE machine_seen (
        name TEXT PRIMARY KEY REFERENCES machines(name) ON DELETE CASCADE,
        at   INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO machine_seen (name, at) SELECT name, last_seen_at FROM machines WHERE last_seen_at IS NOT NULL;
      ALTER TABLE machines DROP COLUMN last_seen_at;
    `,
  },
]);

/**
 * Migration 10 (frozen: a shipped migration is never edited). Every kind the API serves
 * gets `uid` (a UUID v4 fixed at creation), `resource_version` (from ONE store-wide
 * counter, `maintenance.resource_version`) and `generation` where it had none.
 *
 * Triggers keep resource_version right for every writer, old and new: any insert, and
 * any update that changes a stored column, bumps the counter and stamps the row in the
 * same transaction. For machines, an update that only moves `last_seen_at` /
 * `status_updated_at` (the write batcher's heartbeat flush) does not count: a Machine's
 * resourceVersion moves on enrollment, spec, credential, report, liveness and
 * condition changes, not on every heartbeat. The machine generation moves when its spec
 * (labels, zone, addresses, pins, machine-id) changes; the other kinds' generations are
 * set by the code that writes their spec (rollouts.ts, remediation.ts, packages.ts).
 * Existing rows are backfilled by an update that fires the new triggers: each gets a
 * uid and its own resource version.
 */
function objectMetadataSql(): string {
  const uuid = `lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' ||
    substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))`;
  const stamp = (table: string) => `
      UPDATE maintenance SET value = value + 1 WHERE name = 'resource_version';
      UPDATE ${table} SET resource_version = (SELECT value FROM maintenance WHERE name = 'resource_version'),
        uid = coalesce(uid, ${uuid}) WHERE rowid = NEW.rowid;`;
  const machineColumns = [
    'uid', 'machine_id', 'credential_id', 'credential_hash', 'labels', 'zone', 'addresses', 'enrolled_at', 'enrolled_by_token',
    'revoked_at', 'report', 'report_changed_at', 'liveness_state', 'liveness_since', 'liveness_reason', 'liveness_message',
    'conditions', 'agent_version', 'package_overrides', 'public_key', 'credential_expires_at', 'next_credential_id',
    'next_credential_hash', 'next_credential_expires_at', 'reset_at', 'generation',
  ];
  const machineSpec = ['machine_id', 'labels', 'zone', 'addresses', 'package_overrides'];
  const changed = (cols: readonly string[]) => cols.map((c) => `NEW.${c} IS NOT OLD.${c}`).join(' OR ');
  const tables = ['cluster_package_version', 'rollouts', 'remediation_rules', 'machines', 'tokens', 'artifacts'];
  let sql = `
      INSERT INTO maintenance (name, value) VALUES ('resource_version', 0);
      ALTER TABLE remediation_rules ADD COLUMN created_at INTEGER;
      UPDATE remediation_rules SET created_at = updated_at;
  `;
  for (const t of tables) {
    sql += `
      ALTER TABLE ${t} ADD COLUMN uid TEXT;
      ALTER TABLE ${t} ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 0;`;
    if (t !== 'cluster_package_version') sql += `
      ALTER TABLE ${t} ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;`;
    // UPDATE OF: an update that sets none of these columns (the batcher's last-seen flush)
    // does not even evaluate the trigger; WHEN: one that sets them to the same values is no change.
    const when = t === 'machines' ? `OF ${machineColumns.join(', ')} ON ${t} WHEN ${changed(machineColumns)}` : `ON ${t}`;
    sql += `
      CREATE UNIQUE INDEX ${t}_by_uid ON ${t} (uid) WHERE uid IS NOT NULL;
      CREATE TRIGGER ${t}_rv_insert AFTER INSERT ON ${t} BEGIN ${stamp(t)}
      END;
      CREATE TRIGGER ${t}_rv_update AFTER UPDATE ${when} BEGIN ${stamp(t)}
      END;`;
  }
  sql += `
      CREATE TRIGGER machines_generation AFTER UPDATE OF ${machineSpec.join(', ')} ON machines WHEN ${changed(machineSpec)} BEGIN
        UPDATE machines SET generation = OLD.generation + 1 WHERE rowid = NEW.rowid;
      END;`;
  for (const t of tables) sql += `
      UPDATE ${t} SET uid = ${uuid} WHERE uid IS NULL;`;
  return sql;
}

/** The schema version this code writes. */
export const SCHEMA_VERSION: number = migrations.at(-1)?.version ?? 0;

/**
 * Brings the file up to SCHEMA_VERSION. Idempotent; safe when two processes race
 * (the version is re-read inside each IMMEDIATE transaction). Returns the versions applied.
 */
export function migrate(db: Database.Database, list: readonly Migration[] = migrations): number[] {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new RangeError(`migration ${i} has version ${m.version}, expected ${i + 1}`);
  });
  const latest = list.at(-1)?.version ?? 0;
  const found = userVersion(db);
  if (found > latest) {
    throw new AppError(
      StoreErrorCode.schemaTooNew,
      `store schema version ${found} is newer than this coordinator understands (${latest}): run a newer coordinator`,
      { context: { found, supported: latest } },
    );
  }
  const applied: number[] = [];
  for (const m of list) {
    if (m.version <= found) continue;
    try {
      db.transaction(() => {
        if (userVersion(db) >= m.version) return; // another process got there first
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
        applied.push(m.version);
      }).immediate();
    } catch (err) {
      throw new AppError(StoreErrorCode.migrationFailed, `store migration ${m.version} (${m.name}) failed: ${String(err)}`, {
        cause: err,
        context: { version: m.version },
      });
    }
  }
  return applied;
}

/** The schema version recorded in the file (0 for a new file). */
export function userVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}
