/**
 * Did the machine come back from its reboot? Pure: the persisted reboot, what the
 * coordinator sees of the machine now, and the time -> wait, back, or failed.
 *
 * Back means: the agent is connected and reports a boot id other than the one recorded
 * before the reboot, its running kernel is the newest kernel installed before the reboot
 * (when that was known), and its Node is Ready (when there is a member cluster). A
 * machine that reconnects on the OLD boot id did not reboot; one on a new boot but the
 * old kernel booted the wrong entry (siderolabs/omni#1552: sending the upgrade again
 * bricked it). Both fail at once, as does one not back within the timeout; the caller
 * never sends the reboot again by itself.
 */
import type { RebootState } from './types.ts';

/** How long an agent that reconnected on its old boot id is given before that counts (its fresh report may lag the hello). */
export const OLD_BOOT_GRACE_MS = 5_000;

/** What the coordinator sees of the machine now. */
export interface BootFacts {
  readonly connected: boolean;
  /** From the agent's host report; null when it does not say (an older agent). */
  readonly bootId: string | null;
  readonly kernel: string | null;
  /** The Node's Ready condition; null without a member cluster (not checked). */
  readonly nodeReady: 'True' | 'False' | 'Unknown' | null;
}

export type BootVerdict =
  | { readonly kind: 'wait'; readonly message: string }
  | { readonly kind: 'back'; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string };

/** Judges a reboot whose command was recorded (`rebootAt` set). */
export function judgeBoot(s: Pick<RebootState, 'bootBefore' | 'expectedKernel' | 'kernelBefore' | 'rebootAt' | 'reconnectedAt' | 'timeoutMs'>, f: BootFacts, now: number): BootVerdict {
  const started = s.rebootAt ?? now;
  const overdue = now - started >= s.timeoutMs;
  const within = `within ${Math.round(s.timeoutMs / 1000)} s`;
  if (f.connected && f.bootId !== null && s.bootBefore !== null && f.bootId !== s.bootBefore) {
    const boot = `boot ${short(s.bootBefore)} -> ${short(f.bootId)}`;
    if (s.expectedKernel !== null && f.kernel !== s.expectedKernel) {
      return { kind: 'failed', message: `came back on a new boot (${boot}) but on kernel ${f.kernel ?? 'unknown'}, not ${s.expectedKernel}, the newest installed before the reboot: it booted an old entry` };
    }
    const kernel = f.kernel === null ? '' : `, kernel ${f.kernel}`;
    if (f.nodeReady !== null && f.nodeReady !== 'True') {
      if (overdue) return { kind: 'failed', message: `came back on a new boot (${boot}${kernel}) but its Node was not Ready ${within} (Ready=${f.nodeReady})` };
      return { kind: 'wait', message: `new boot (${boot}${kernel}); waiting for its Node to be Ready (Ready=${f.nodeReady})` };
    }
    return { kind: 'back', message: `came back on a new boot (${boot}${kernel})${f.nodeReady === 'True' ? ', Node Ready' : ''}` };
  }
  if (f.connected && f.bootId !== null && f.bootId === s.bootBefore && s.reconnectedAt !== null && now - s.reconnectedAt >= OLD_BOOT_GRACE_MS) {
    return { kind: 'failed', message: `reconnected on the old boot id ${short(f.bootId)}${f.kernel === null ? '' : ` (kernel ${f.kernel})`}: the node did not reboot` };
  }
  if (overdue) {
    const seen = f.connected ? `connected, boot ${f.bootId === null ? 'unknown' : short(f.bootId)}` : 'not connected';
    return { kind: 'failed', message: `did not come back on a new boot ${within} (${seen})` };
  }
  return { kind: 'wait', message: f.connected ? 'waiting for the node to go down and come back on a new boot' : 'waiting for the agent to reconnect on a new boot' };
}

/** The first 8 characters of a boot id (enough to tell two apart in a message). */
function short(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}
