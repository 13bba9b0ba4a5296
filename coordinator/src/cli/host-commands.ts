/**
 * Host cluster commands.
 *
 * Against the coordinator (member side):
 *   register, unregister, host status
 * Against the host cluster directly, with a host kubeconfig (--kubeconfig or KUBECONFIG):
 *   host install, host token create, host remove-member, host monitor, clusters
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { AppError } from '@nodekeeper/common';
import { CLUSTER_LABEL, GROUP, LEASE_NAME, NAMESPACE_PREFIX, VERSION, judgeLease, loadHostKube, sight, type ClusterStatus, type LeaseSighting } from './host-client.ts';
import type { HostRegistrationObject } from './api-client.ts';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { humanDuration, parseDuration } from './duration.ts';
import { parseOutput } from './output.ts';
import { printObject, type CommandContext } from './command-context.ts';
import { renderTable } from './table.ts';

interface ClusterObject {
  metadata: { name: string; creationTimestamp?: string };
  spec?: { syncMode?: string; provider?: string; region?: string; zone?: string };
  status?: Partial<ClusterStatus>;
}

/** The Kubernetes client and the host admin, loaded by the commands that use them (host-client.ts). */
const kube = loadHostKube;

async function hostKubeconfig(ctx: CommandContext, flag: string | undefined): Promise<KubeConfig> {
  const file = flag ?? ctx.io.env['KUBECONFIG']?.split(':')[0];
  if (!file) throw usageError(CliErrorCode.usage, 'name the host cluster: --kubeconfig FILE (or KUBECONFIG)');
  return (await kube()).readKubeconfig(file).kc;
}

export function addHostCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;

  program
    .command('register')
    .description("Register this coordinator's member cluster with a host cluster (pull mode): trade the host bootstrap token for the member's own credential, create its Cluster object, start the Lease and status sync.")
    .requiredOption('--cluster <name>', 'the member cluster name the host token was issued for')
    .requiredOption('--host-token <token>', 'host bootstrap token (from `nkctl host token create` on the host)')
    .requiredOption('--discovery-ca-hash <sha256:hex>', "pin of the host's CA public key (kubeadm style)")
    .option('--host-kubeconfig <file>', 'kubeconfig naming the host server (its CA, if present, must match the pin)')
    .option('--host-server <url>', 'the host API server URL (the CA is then read from its cluster-info and checked against the pin)')
    .option('--provider <name>', 'provider shown on the Cluster object')
    .option('--region <name>', 'region shown on the Cluster object')
    .option('--zone <name>', 'zone shown on the Cluster object')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { cluster: string; hostToken: string; discoveryCaHash: string; hostKubeconfig?: string; hostServer?: string; provider?: string; region?: string; zone?: string; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      if ((opts.hostKubeconfig === undefined) === (opts.hostServer === undefined)) throw usageError(CliErrorCode.usage, 'give exactly one of --host-kubeconfig and --host-server');
      if (!/^sha256:[0-9a-f]{64}$/.test(opts.discoveryCaHash)) throw usageError(CliErrorCode.usage, '--discovery-ca-hash must be sha256: followed by 64 hex digits');
      let server = opts.hostServer ?? '';
      let caPem: string | null = null;
      if (opts.hostKubeconfig !== undefined) {
        const kc = (await kube()).readKubeconfig(opts.hostKubeconfig);
        server = kc.server;
        caPem = kc.caPem;
      }
      const res = await ctx.client(cmd).api.hostAction('register', {
        cluster: opts.cluster, server, caPem, caHash: opts.discoveryCaHash, token: opts.hostToken,
        ...(opts.provider ? { provider: opts.provider } : {}), ...(opts.region ? { region: opts.region } : {}), ...(opts.zone ? { zone: opts.zone } : {}),
      });
      if (format !== 'table') printObject(ctx, format, res);
      else io.stdout(`cluster/${res.cluster} registered with ${res.server} (namespace ${res.namespace}; credential expires ${res.tokenExpires}, rotated automatically)\n${describeHost(res)}`);
    });

  program
    .command('unregister')
    .description('Leave the host cluster: delete this member\'s Cluster, Lease and Machines there, and forget the credential.')
    .option('--local-only', 'only forget the registration (when the host is gone for good)')
    .action(async (opts: { localOnly?: boolean }, cmd: Command) => {
      const res = await ctx.client(cmd).api.hostAction('unregister', { localOnly: opts.localOnly === true });
      io.stdout(`unregistered${res.removed && res.removed.length > 0 ? `; removed from the host: ${res.removed.join(', ')}` : ''}\n`);
    });

  const host = program.command('host').description('The host cluster: registration state (member side); install, tokens, monitor (host side, with --kubeconfig).');
  host
    .command('status')
    .description("This member's registration: host, namespace, last sync, last Lease renewal, credential expiry, last error.")
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const res = await ctx.client(cmd).api.hostStatus();
      if (format !== 'table') printObject(ctx, format, res);
      else io.stdout(describeHost(res));
    });

  host
    .command('rotate-credential')
    .description("Ask the host for a fresh member credential now (it also rotates by itself at 80 % of its lifetime); no restart.")
    .action(async (_opts: unknown, cmd: Command) => {
      const res = await ctx.client(cmd).api.hostAction('rotate');
      io.stdout(`host credential rotated; expires ${res.tokenExpires}\n`);
    });

  host
    .command('sync')
    .description('Sync with the host now: Lease, Cluster status, Machines, ClusterPackageVersions.')
    .action(async (_opts: unknown, cmd: Command) => {
      const res = await ctx.client(cmd).api.hostAction('sync');
      io.stdout(describeHost(res));
    });

  host
    .command('install')
    .description('Install nodekeeper on the host cluster: the CRDs (Cluster, Machine, ClusterPackageVersion), the viewer role, the member identity policy and the public cluster-info.')
    .option('--kubeconfig <file>', 'host admin kubeconfig (default KUBECONFIG)')
    .action(async (opts: { kubeconfig?: string }) => {
      const res = await (await kube()).installHost(await hostKubeconfig(ctx, opts.kubeconfig), (line) => io.stderr(`${line}\n`));
      io.stdout(`host ${res.server} ready; members pin its CA with --discovery-ca-hash ${res.caHash}\n`);
    });

  const token = host.command('token').description('Bootstrap tokens for member clusters.');
  token
    .command('create')
    .description("Prepare a member's namespace, identity and RBAC on the host and print the command that registers it.")
    .requiredOption('--cluster <name>', 'the member cluster name (1-40 of a-z, 0-9, -)')
    .option('--ttl <duration>', 'how long the bootstrap token is valid', '24h')
    .option('--description <text>', 'what the token is for', '')
    .option('--kubeconfig <file>', 'host admin kubeconfig (default KUBECONFIG)')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { cluster: string; ttl: string; description: string; kubeconfig?: string; output?: string }) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const ttlMs = parseDuration(opts.ttl, '--ttl');
      if (ttlMs < 60_000) throw usageError(CliErrorCode.badDuration, `invalid --ttl "${opts.ttl}": must be at least 1m`);
      const t = await (await kube()).createMemberToken(await hostKubeconfig(ctx, opts.kubeconfig), { cluster: opts.cluster, ttlMs, description: opts.description, now: io.now() });
      const command = `nkctl register --cluster ${t.cluster} --host-server ${t.server} --host-token ${t.token} --discovery-ca-hash ${t.caHash}`;
      if (format !== 'table') printObject(ctx, format, { ...t, registerCommand: command });
      else io.stdout(`${t.token}\n\nexpires ${t.expires}. On the member's coordinator, run:\n  ${command}\n`);
    });

  host
    .command('remove-member')
    .argument('<cluster>', 'member cluster name')
    .description("Remove a member from the host: its Cluster, namespace (Machines, Lease, ClusterPackageVersions), RBAC and bootstrap tokens.")
    .option('--kubeconfig <file>', 'host admin kubeconfig (default KUBECONFIG)')
    .action(async (cluster: string, opts: { kubeconfig?: string }) => {
      const removed = await (await kube()).removeMember(await hostKubeconfig(ctx, opts.kubeconfig), cluster);
      io.stdout(removed.length === 0 ? `nothing of ${cluster} was on the host\n` : `removed ${removed.join(', ')}\n`);
    });

  host
    .command('monitor')
    .description("Watch members' Leases on the host and mark a member Unknown when its Lease has not changed for the grace period (judged on this process's clock). Runs until stopped.")
    .option('--kubeconfig <file>', 'host admin kubeconfig (default KUBECONFIG)')
    .option('--grace <duration>', 'how long a Lease may stay unchanged', '40s')
    .option('--interval <duration>', 'how often to read the Leases', '2s')
    .option('--once <duration>', 'stop after this long (tests, scripts)')
    .action(async (opts: { kubeconfig?: string; grace: string; interval: string; once?: string }) => {
      const graceMs = parseDuration(opts.grace, '--grace');
      const intervalMs = Math.max(100, parseDuration(opts.interval, '--interval'));
      const stopAt = opts.once === undefined ? Infinity : io.now() + parseDuration(opts.once, '--once');
      await monitor(ctx, await hostKubeconfig(ctx, opts.kubeconfig), graceMs, intervalMs, stopAt);
    });

  program
    .command('clusters')
    .description('Every member cluster on the host: readiness, Kubernetes version, nodes, agents and package versions (with --kubeconfig for the host).')
    .option('--kubeconfig <file>', 'host kubeconfig (default KUBECONFIG)')
    .option('-o, --output <format>', 'wide, json or yaml')
    .action(async (opts: { kubeconfig?: string; output?: string }) => {
      const format = parseOutput(opts.output, ['table', 'wide', 'json', 'yaml']);
      const kc = await hostKubeconfig(ctx, opts.kubeconfig);
      const { CustomObjectsApi, hostError } = await kube();
      const list = await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'clusters' }).catch((err: unknown) => {
        throw hostError('list Clusters', err);
      }) as { items: ClusterObject[] };
      if (format === 'json' || format === 'yaml') {
        printObject(ctx, format, { apiVersion: `${GROUP}/${VERSION}`, kind: 'ClusterList', items: list.items });
        return;
      }
      if (list.items.length === 0) {
        io.stderr('No clusters found.\n');
        return;
      }
      io.stdout(renderClusters(list.items, io.now(), format === 'wide'));
    });
}

function condition(c: ClusterObject, type: string) {
  return c.status?.conditions?.find((x) => x.type === type);
}

export function renderClusters(items: readonly ClusterObject[], now: number, wide: boolean): string {
  const header = ['NAME', 'READY', 'REASON', 'VERSION', 'NODES', 'AGENTS', 'PACKAGES', ...(wide ? ['ROLLOUTS', 'REMEDIATION', 'ZONE', 'LAST-STATUS'] : []), 'AGE'];
  const rows = [...items].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).map((c) => {
    const ready = condition(c, 'Ready');
    const s = c.status;
    // With a desired version: name=desired(at it/machines); without: what machines run, most common first.
    const packages = (s?.packages ?? [])
      .filter((p) => p.machines > 0 || p.desiredVersion != null)
      .map((p) => p.desiredVersion != null // absent on the host: a merge patch drops nulls
        ? `${p.name}=${p.desiredVersion}(${p.atDesired}/${p.machines})`
        : `${p.name}=${[...p.versions].sort((a, b) => b.machines - a.machines).map((v) => `${v.version}(${v.machines})`).join('|')}`)
      .join(',');
    return [
      c.metadata.name,
      ready?.status ?? 'Unknown',
      ready?.reason ?? 'NoStatus',
      s?.kubernetesVersion ?? '<unknown>',
      s?.nodeSummary === undefined ? '-' : `${s.nodeSummary.ready}/${s.nodeSummary.total}`,
      s?.nodeSummary === undefined ? '-' : String(s.nodeSummary.agentsConnected),
      packages || '<none>',
      ...(wide
        ? [
          s?.rollouts === undefined ? '-' : `${s.rollouts.active} active, ${s.rollouts.paused} paused`,
          s?.remediation === undefined ? '-' : `${s.remediation.active} running, ${s.remediation.needsHuman} need a human${s.remediation.guard !== 'none' ? `, ${s.remediation.guard}` : ''}`,
          c.spec?.zone ?? '-',
          s?.lastStatusTime === undefined ? '-' : humanDuration(now - Date.parse(s.lastStatusTime)),
        ]
        : []),
      c.metadata.creationTimestamp === undefined ? '-' : humanDuration(now - Date.parse(c.metadata.creationTimestamp)),
    ];
  });
  return renderTable(header, rows);
}

function describeHost(r: HostRegistrationObject): string {
  if (!r.registered) return 'Not registered with a host cluster (see nkctl register --help).\n';
  const lines = [
    ['Cluster:', r.cluster ?? ''],
    ['Host:', r.server ?? ''],
    ['Namespace:', r.namespace ?? ''],
    ['Credential expires:', r.tokenExpires ?? '-'],
    ['Last sync:', r.lastSyncTime ?? 'never'],
    ['Last Lease renewal:', r.lastLeaseRenewTime ?? 'never'],
    ['Machines mirrored:', String(r.machinesMirrored)],
    ['Last error:', r.lastError === null ? 'none' : `${r.lastError.message} (${r.lastError.code}) at ${r.lastError.at}`],
  ];
  return lines.map(([k, v]) => `${k!.padEnd(20)}${v}`).join('\n') + '\n';
}

/** The monitor loop: read Leases, judge them on this process's clock, mark stale members Unknown. */
async function monitor(ctx: CommandContext, kc: KubeConfig, graceMs: number, intervalMs: number, stopAt: number): Promise<void> {
  const { CoordinationV1Api, CustomObjectsApi, hostError, mergePatch } = await kube();
  const custom = kc.makeApiClient(CustomObjectsApi);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const sightings = new Map<string, LeaseSighting>();
  const clock = () => performance.now();
  const say = (line: string) => ctx.io.stdout(`${new Date(ctx.io.now()).toISOString()} ${line}\n`);
  say(`monitoring member Leases (grace ${graceMs / 1000}s)`);
  while (ctx.io.now() < stopAt) {
    try {
      const clusters = await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'clusters' }) as { items: ClusterObject[] };
      const leases = await coordination.listLeaseForAllNamespaces({ labelSelector: CLUSTER_LABEL });
      const renewOf = new Map(leases.items
        .filter((l) => l.metadata?.name === LEASE_NAME && l.metadata.namespace?.startsWith(NAMESPACE_PREFIX))
        .map((l) => [l.metadata!.namespace!.slice(NAMESPACE_PREFIX.length), l.spec?.renewTime === undefined ? null : new Date(l.spec.renewTime).toISOString()]));
      const now = clock();
      for (const c of clusters.items) {
        const name = c.metadata.name;
        const s = sight(sightings.get(name), renewOf.get(name) ?? null, now);
        sightings.set(name, s);
        const verdict = judgeLease(s, now, graceMs);
        const ready = condition(c, 'Ready');
        if (verdict.fresh || ready?.status === 'Unknown') continue;
        const message = `Lease ${NAMESPACE_PREFIX}${name}/${LEASE_NAME} not renewed for ${Math.round(verdict.silentMs / 1000)}s as seen by the host monitor (grace ${graceMs / 1000}s)`;
        const others = (c.status?.conditions ?? []).filter((x) => x.type !== 'Ready');
        const conditions = [...others, { type: 'Ready', status: 'Unknown', reason: 'LeaseExpired', message, lastTransitionTime: new Date(ctx.io.now()).toISOString() }];
        await custom.patchClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: 'clusters', name, body: { status: { conditions } } }, mergePatch);
        say(`cluster/${name} Unknown: ${message}`);
      }
    } catch (err) {
      const e = err instanceof AppError ? err : hostError('monitor', err);
      say(`error: ${e.message} (${e.code}); retrying`);
    }
    await ctx.io.sleep(intervalMs);
  }
}
