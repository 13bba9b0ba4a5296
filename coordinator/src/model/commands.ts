/** What the coordinator asked one agent to do, with its id, deadline and result (executed at most once per id). */

export type CommandState = 'Pending' | 'Sent' | 'Running' | 'Succeeded' | 'Failed' | 'TimedOut';

export interface CommandRecord {
  readonly id: string;
  readonly machine: string;
  readonly kind: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Who asked, e.g. `rollout/web-kubelet`. */
  readonly owner: string | null;
  readonly state: CommandState;
  readonly step: string | null;
  readonly message: string;
  readonly result: Readonly<Record<string, unknown>> | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly timeoutMs: number;
  readonly createdAt: number;
  readonly sentAt: number | null;
  readonly finishedAt: number | null;
}
