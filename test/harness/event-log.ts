/**
 * Appends events to a coordinator's store from the test, as one of its controllers would
 * (the event log's sinks read the table by id, whoever wrote it). SQLite's lock makes
 * this safe beside the running coordinator.
 */
import path from 'node:path';
import Database from 'better-sqlite3';

export interface LoggedEvent {
  readonly object: string;
  readonly type?: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** Appends the events in one transaction; returns their ids. */
export function recordEvents(dataDir: string, events: readonly LoggedEvent[]): number[] {
  const db = new Database(path.join(dataDir, 'state.db'));
  try {
    db.pragma('busy_timeout = 10000');
    const insert = db.prepare('INSERT INTO events (at, object, type, reason, message) VALUES (?, ?, ?, ?, ?)');
    return db.transaction(() => events.map((e) => Number(insert.run(Date.now(), e.object, e.type ?? 'Normal', e.reason, e.message).lastInsertRowid)))();
  } finally {
    db.close();
  }
}
