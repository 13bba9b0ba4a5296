/**
 * The member's Machines mirrored into its namespace on the host: listed once (and again
 * after a conflict), then only the machines that changed meaningfully are written, at
 * most `concurrency` at a time; machines gone from the member are deleted there.
 *
 * Spec (with the labels) and status are compared apart, so a status change is one write,
 * not two. Messages are left out of the comparison (`mirrorFingerprints`): they carry
 * moving details (a node under memory pressure says how much is free, at every probe),
 * and rewriting them would make every such node a steady write. A message is written
 * with the next meaningful change of its machine (a status, reason, phase, version or
 * health), so the host shows each message as of its machine's last such change.
 */
import type { MachineObject } from '../api/objects.ts';
import { canonicalJson, hostMachine } from './cluster-status.ts';
import { hostError, mergePatch, statusOf, type KubeClients } from './kube-client.ts';
import { selectMirrored, type HostMirrorMode } from './mirror-selection.ts';
import { memberNamespace } from './names.ts';
import type { HostRegistration } from './registration.ts';

export class MachineMirror {
  /** Machine writes so far (for `nkctl host status`). */
  writes = 0;
  /** Machine name -> fingerprints of what the host holds (as last written or read). */
  #mirrored = new Map<string, MirrorFingerprints>();
  #listed = false;
  /** Machine name -> when it last needed mirroring (mode `unhealthy`). */
  #lastNeeded = new Map<string, number>();
  readonly #concurrency: number;
  readonly #mode: HostMirrorMode;
  readonly #lingerMs: number;

  constructor(concurrency: number, mode: HostMirrorMode = 'all', lingerMs?: number) {
    this.#concurrency = concurrency;
    this.#mode = mode;
    this.#lingerMs = lingerMs ?? 0;
  }

  get mode(): HostMirrorMode {
    return this.#mode;
  }

  /** The machines to mirror now (all of them, or those that need an eye: mirror-selection.ts). */
  select(machines: readonly MachineObject[], now: number): MachineObject[] {
    const { selected, lastNeeded } = selectMirrored(machines, this.#mode, this.#lastNeeded, now, this.#lingerMs);
    this.#lastNeeded = lastNeeded;
    return selected;
  }

  /** Machines the host holds, as far as this mirror knows. */
  get size(): number {
    return this.#mirrored.size;
  }

  /** Someone else changed or removed what we hold: read it all again at the next sync. */
  relist(): void {
    this.#listed = false;
  }

  /** A new registration, or none: nothing is known of the host. */
  clear(): void {
    this.#mirrored.clear();
    this.#lastNeeded.clear();
    this.#listed = false;
  }

  /** Makes the host hold exactly `machines` (what select() chose), writing what changed. */
  async sync(c: KubeClients, reg: HostRegistration, machines: readonly MachineObject[]): Promise<void> {
    const ns = memberNamespace(reg.cluster);
    const res = { ...c.crd('machines'), namespace: ns };
    if (!this.#listed) {
      const items = await listMachines(c, ns);
      this.#mirrored = new Map(items.map((m) => [m.metadata.name, mirrorFingerprints(m)]));
      this.#listed = true;
    }
    const wanted = new Map(machines.map((m) => [m.metadata.name, hostMachine(m, reg.cluster, ns)]));
    const writes: Array<() => Promise<void>> = [];
    for (const [name, obj] of wanted) {
      const fp = mirrorFingerprints(obj);
      const had = this.#mirrored.get(name);
      const specChanged = had?.spec !== fp.spec;
      if (!specChanged && had?.status === fp.status) continue;
      writes.push(async () => {
        try {
          const patchSpec = () => c.custom.patchNamespacedCustomObject({ ...res, name, body: { metadata: { labels: obj.metadata.labels }, spec: obj.spec } }, mergePatch);
          if (had === undefined) {
            // Already there (written before a lost answer, or by an earlier run): update it instead.
            await c.custom.createNamespacedCustomObject({ ...res, body: { apiVersion: obj.apiVersion, kind: obj.kind, metadata: obj.metadata, spec: obj.spec } }).catch((err: unknown) => {
              if (statusOf(err) !== 409) throw err;
              return patchSpec();
            });
          } else if (specChanged) {
            await patchSpec();
          }
          if (had?.status !== fp.status) await c.custom.patchNamespacedCustomObjectStatus({ ...res, name, body: { status: statusPatch(obj.status) } }, mergePatch);
          this.#mirrored.set(name, fp);
          this.writes += 1;
        } catch (err) {
          this.#mirrored.delete(name);
          throw hostError(`write Machine ${ns}/${name}`, err);
        }
      });
    }
    for (const name of this.#mirrored.keys()) {
      if (wanted.has(name)) continue;
      writes.push(async () => {
        await c.custom.deleteNamespacedCustomObject({ ...res, name }).catch((err: unknown) => {
          if (statusOf(err) !== 404) throw hostError(`delete Machine ${ns}/${name}`, err);
        });
        this.#mirrored.delete(name);
      });
    }
    await runLimited(writes, this.#concurrency);
  }

  /** Deletes every Machine of the namespace on the host, one by one; returns what it removed. */
  async removeAll(c: KubeClients, ns: string): Promise<string[]> {
    const removed: string[] = [];
    for (const m of await listMachines(c, ns)) {
      await c.custom.deleteNamespacedCustomObject({ ...c.crd('machines'), namespace: ns, name: m.metadata.name }).catch((err: unknown) => {
        if (statusOf(err) !== 404) throw hostError(`delete Machine ${m.metadata.name}`, err);
      });
      removed.push(`machine/${m.metadata.name}`);
    }
    this.clear();
    return removed;
  }
}

async function listMachines(c: KubeClients, ns: string): Promise<Array<{ metadata: { name: string; labels?: unknown }; spec?: unknown; status?: unknown }>> {
  const list = await c.custom.listNamespacedCustomObject({ ...c.crd('machines'), namespace: ns }).catch((err: unknown) => {
    throw hostError(`list Machines in ${ns}`, err);
  }) as { items: Array<{ metadata: { name: string; labels?: unknown }; spec?: unknown; status?: unknown }> };
  return list.items;
}

/** Status sections hostMachine() leaves out when the member has none. */
const OPTIONAL_STATUS = ['node', 'kubelet', 'containerd', 'cni', 'host', 'remediation', 'revoked'] as const;

/**
 * A merge patch of the whole status. A key left out of a merge patch keeps its old value,
 * so the optional sections the member no longer has (a remediation over, a Node gone) are
 * sent as null, which removes them. Pure.
 */
export function statusPatch(status: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return { ...Object.fromEntries(OPTIONAL_STATUS.map((k) => [k, null])), ...status };
}

export interface MirrorFingerprints {
  /** Labels and spec: written with a patch of the object. */
  readonly spec: string;
  /** Status without messages: written with a patch of the status subresource. */
  readonly status: string;
}

const MESSAGES: ReadonlySet<string> = new Set(['message']);

/**
 * What decides a write, for a Machine as the member builds it or as the host holds it.
 * Pure. Messages are left out of the status (see the file's comment).
 */
export function mirrorFingerprints(m: { metadata: { labels?: unknown }; spec?: unknown; status?: unknown }): MirrorFingerprints {
  return { spec: canonicalJson([m.metadata.labels, m.spec]), status: canonicalJson(m.status, MESSAGES) };
}

/** Runs tasks with at most `limit` in flight; rejects with the first failure after all settle. */
async function runLimited(tasks: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== null) throw failure;
}
