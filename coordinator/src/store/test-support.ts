/**
 * Helpers shared by the store and fleet tests: temp dirs for real SQLite files, a table
 * dump to prove "nothing changed", and sample identities and reports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '@nodekeeper/common';
import type { MachineIdentity, NodeReport } from '@nodekeeper/protocol';
import { openStore, type Store } from './db.ts';
import { migrations } from './migrations.ts';

/**
 * Builds rows in `file` at an older schema (the first `upTo` migrations) with today's
 * code, then closes it. Today's reads take last-seen times from machine_seen (migration
 * 14): the table is there for the build only.
 */
export function buildAtSchema(file: string, upTo: number, build: (store: Store) => void): void {
  const store = openStore(file, { migrations: migrations.slice(0, upTo), now: () => 1_000 });
  const raw = new Database(file);
  try {
    raw.exec('CREATE TABLE machine_seen (name TEXT PRIMARY KEY, at INTEGER NOT NULL)');
    try {
      build(store);
    } finally {
      store.close();
    }
    raw.exec('DROP TABLE machine_seen');
  } finally {
    raw.close();
  }
}

/** The store in `file`, with `names` enrolled the first time it is opened (a restart finds them there). */
export function enrolledStore(file: string, names: readonly string[], opts: { now: () => number; log: Logger }): Store {
  const store = openStore(file, opts);
  if (store.listMachines().length === 0) {
    const { token } = store.createToken({ ttlMs: 60_000, maxUses: names.length, description: '' });
    for (const n of names) store.enroll({ token, identity: identity(n), agentVersion: 't' });
  }
  return store;
}

/** A fresh temp dir and a function that removes it. */
export function tempDir(prefix = 'nk-store-'): { dir: string; file: (name?: string) => string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, file: (name = 'store.db') => path.join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Every row of every table (and the autoincrement counters), read through a second connection. */
export function dumpTables(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name, wr FROM pragma_table_list WHERE type = 'table' AND schema = 'main' ORDER BY name").all() as Array<{ name: string; wr: number }>;
    const out: Record<string, unknown[]> = {};
    // A WITHOUT ROWID table has no rowid to order by: its primary key (the first column) is.
    for (const { name, wr } of tables) out[name] = db.prepare(`SELECT * FROM "${name}" ORDER BY ${wr === 1 ? '1' : 'rowid'}`).all();
    return out;
  } finally {
    db.close();
  }
}

/** A machine identity for tests. */
export function identity(hostname: string, machineId = `mid-${hostname}`): MachineIdentity {
  return { machineId, hostname, addresses: ['10.0.0.1'], zone: 'zone-a', labels: { pool: 'workers' } };
}

const at = '2026-11-24T02:00:00.000Z';

/** A healthy report for `hostname`. */
export function sampleReport(hostname = 'node-1'): NodeReport {
  return {
    identity: identity(hostname),
    kubelet: {
      health: 'healthy', reason: 'HealthzOk', message: 'ok', observedAt: at, service: null,
      version: { raw: 'Kubernetes v1.31.2', semver: '1.31.2', source: 'binary' },
    },
    runtime: {
      health: 'healthy', reason: 'RuntimeReady', message: '', observedAt: at,
      version: { raw: '1.6.20~ds1', semver: '1.6.20', source: 'cri' }, runtimeName: 'containerd', runtimeApiVersion: 'v1',
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: true, reason: '', message: '' },
      ],
      service: null,
    },
    cni: {
      health: 'healthy', reason: 'ConfigValid', message: 'config 10-bridge.conflist is valid', observedAt: at,
      version: { raw: '1.1.1', semver: '1.1.1', source: 'dpkg' },
      configFile: '/etc/cni/net.d/10-bridge.conflist', networkName: 'nk', cniVersion: '1.0.0', plugins: [],
    },
    host: {
      health: 'healthy', reason: 'NoPressure', message: '', observedAt: at, version: null, os: 'Debian 12', kernel: '6.1', arch: 'x64',
      cpus: 2, memoryTotalBytes: 2 ** 31, memoryAvailableBytes: 2 ** 30, uptimeSeconds: 5,
      disks: [{ path: '/var/lib/kubelet', totalBytes: 100, usedBytes: 50, usedPercent: 50 }],
      pressure: { disk: false, memory: false, pid: false },
    },
  };
}
