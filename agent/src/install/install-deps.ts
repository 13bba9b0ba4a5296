/**
 * What the installer and the rollback share: their dependencies, hooks, progress
 * callback and outcome type (kept apart so neither module imports the other's code).
 */
import { AppError, type Logger } from '@nodekeeper/common';
import type { InstallParams, InstallResult } from '@nodekeeper/protocol';
import type { ServiceManager } from '../services/service-manager.ts';
import type { DownloadOptions } from './download.ts';
import type { HealthCheck } from './health.ts';
import type { Journal, JournalRecord, JournalStep } from './journal.ts';
import type { TrustedKey } from './verify.ts';
import type { InstallPolicy } from './confine.ts';

/** What an install ends with: the protocol's result, plus the error when it did not succeed. */
export interface InstallOutcome {
  readonly result: InstallResult;
  readonly error: { readonly code: string; readonly message: string } | null;
}

/**
 * The agent's own upgrade as the installer drives it (self-upgrade/self-upgrade.ts
 * implements it). A port, so that self-upgrade/ depends on install/ and not the reverse.
 */
export interface SelfUpgradeHandover {
  /** Switches `current` to the new agent and exits into it; resolves only when it refused, nothing changed. */
  switchTo(commandId: string, params: InstallParams, from: string | null): Promise<InstallOutcome>;
  /** Finishes an own upgrade the journal says was under way when the agent stopped. */
  recover(rec: JournalRecord): Promise<InstallOutcome>;
}

export interface InstallHooks {
  /** Called after the journal records `step` and before the step acts (the kill test's hook). */
  beforeStep?(step: JournalStep): void | Promise<void>;
  /** Called after `step` acted, before the next journal record. */
  afterStep?(step: JournalStep): void | Promise<void>;
}

export interface InstallerDeps {
  readonly hostRoot: string;
  /** Host path of the packages tree (default /var/lib/nodekeeper/packages). */
  readonly packagesDir: string;
  /** Host path of the probes' recordedVersionsFile. */
  readonly recordedVersionsFile: string;
  readonly journal: Journal;
  readonly services: ServiceManager;
  readonly health: HealthCheck;
  readonly trustedKeys: readonly TrustedKey[];
  readonly download: Omit<DownloadOptions, 'timeoutMs'> & { readonly timeoutMs: number };
  readonly healthIntervalMs?: number;
  /** Confinement (allow-list, archive bounds, downgrades); default DEFAULT_INSTALL_POLICY. */
  readonly policy?: InstallPolicy;
  readonly hooks?: InstallHooks;
  /** The agent's own upgrade (package nodekeeper-agent); without it that package installs like any other. */
  readonly selfUpgrade?: SelfUpgradeHandover;
  readonly log: Logger;
}

export type Progress = (step: JournalStep, message: string) => void;

/** The code and message of a failure: an AppError's own, else `fallback` with the error's message. */
export const errorOf = (err: unknown, fallback: string): { code: string; message: string } =>
  err instanceof AppError ? { code: err.code, message: err.message } : { code: fallback, message: (err as Error)?.message ?? String(err) };

