/**
 * What every probe is given: the configuration, a clock and a command runner. Tests
 * inject a fixed clock and, for systemctl, a runner replaying real output samples.
 */
import type { ProbeConfig } from './config.ts';
import { runCommand, type CommandRunner } from './run-command.ts';

export interface ProbeContext {
  readonly config: ProbeConfig;
  /** observedAt comes from here, never from `new Date()` inside a probe. */
  readonly clock: () => Date;
  readonly run: CommandRunner;
}

/** A context with the real clock and runner unless overridden. */
export function createProbeContext(
  config: ProbeConfig,
  overrides: { clock?: () => Date; run?: CommandRunner } = {},
): ProbeContext {
  return { config, clock: overrides.clock ?? (() => new Date()), run: overrides.run ?? runCommand };
}

/** observedAt for a result. */
export function observedAt(ctx: ProbeContext): string {
  return ctx.clock().toISOString();
}
