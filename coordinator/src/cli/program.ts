/**
 * nkctl's command tree (commander) and what each command does: resolve the connection,
 * call the API, render. Connection settings are resolved lazily, once, so `version`
 * and `--help` work without a server.
 */
import { Command } from 'commander';
import { API_VERSION, type Machine as MachineObject } from '@nodekeeper/api';
import { ApiClient } from './api-client.ts';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { parseCount } from './rollout-spec.ts';
import { resolveConnection, type ConnectionConfig, type ConnectionFlags } from './config.ts';
import { describeMachine } from './describe-machine.ts';
import { describeRollout } from './describe-rollout.ts';
import { parseDuration } from './duration.ts';
import { renderMachines } from './machines-view.ts';
import { parseOutput, toJson, toYaml, type OutputFormat } from './output.ts';
import { matches, parseSelector } from './selector.ts';
import type { Rollout as RolloutObject } from '@nodekeeper/api';
import { renderRollouts } from './rollout-views.ts';
import { follow, type ChangeType } from './watch-follow.ts';
import { joinCommand, renderTokenCreated, renderTokens } from './tokens-view.ts';
import { addPackageCommands } from './package-commands.ts';
import { addRemediationCommands } from './remediation-commands.ts';
import { addDeleteCommands } from './delete-commands.ts';
import { addRolloutCommands } from './rollout-commands.ts';
import { addRebootCommands } from './reboot-commands.ts';
import { addHostCommands } from './host-commands.ts';
import { addCredentialCommands } from './credential-commands.ts';
import { addBackupCommands } from './backup-commands.ts';
import type { CliIo, CommandContext } from './command-context.ts';

/** How many events `describe` shows, newest last. */
const DESCRIBE_EVENTS = 20;

/** Build the command tree; actions write through `io`. */
export function buildProgram(io: CliIo): Command {
  let connection: ConnectionConfig | null = null;
  const program = new Command(io.programName);
  const client = (cmd: Command): { api: ApiClient; cfg: ConnectionConfig } => {
    connection ??= resolveConnection(cmd.optsWithGlobals<ConnectionFlags>(), io.env, io.cwd);
    return { api: new ApiClient(connection, { userAgent: `nkctl/${io.version}` }), cfg: connection };
  };

  program
    .description('Operate a nodekeeper fleet: machines, their kubelet, containerd and CNI health, enrollment tokens, packages and rollouts.')
    .option('-s, --server <url>', 'coordinator URL, e.g. https://10.0.0.1:8443 (env NKCTL_SERVER)')
    .option('--token <token>', 'API credential (env NKCTL_TOKEN)')
    .option('--token-file <file>', 'read the API credential from a file')
    .option('--ca <file>', 'PEM CA certificate to trust for the server (env NKCTL_CA)')
    .option('--insecure-skip-tls-verify', 'do not verify the server certificate (unsafe)')
    .option('--config <file>', 'nkctl config file (env NKCTL_CONFIG; default ~/.config/nodekeeper/nkctl.yaml)')
    .option('--request-timeout <duration>', 'give up on a request after this long, 0 for never', '30s')
    .showSuggestionAfterError(true);

  const get = program.command('get').description('List resources in a table or as API objects.');
  get
    .command('machines')
    .aliases(['machine', 'm'])
    .argument('[name]', 'one machine by name')
    .description('List machines with their kubelet, containerd and CNI versions and remediation phase; -o wide adds health and open faults.')
    .option('-o, --output <format>', 'wide, json, yaml or name')
    .option('-l, --selector <selector>', 'filter by labels: key=value, key!=value, key, !key (comma-separated)')
    .option('-w, --watch', 'after the list, print a line per change (server-side watch) until interrupted')
    .action(async (name: string | undefined, opts: { output?: string; selector?: string; watch?: boolean }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'wide', 'json', 'yaml', 'name']);
      const selector = parseSelector(opts.selector ?? '');
      if (name !== undefined && selector.length > 0) throw usageError(CliErrorCode.usage, 'a machine name and a label selector (-l) cannot be combined');
      const { api } = client(cmd);
      if (opts.watch === true) {
        // The server filters by the selector; one name is filtered here (the watch is of the list).
        const listPath = `/v1/machines${selector.length === 0 ? '' : `?labelSelector=${encodeURIComponent(opts.selector ?? '')}`}`;
        const one = (m: MachineObject) => name === undefined || m.metadata.name === name;
        await follow<MachineObject>({
          list: async () => {
            const l = await api.listMachinesSelected(selector.length === 0 ? '' : opts.selector ?? '');
            return { ...l, items: l.items.filter(one) };
          },
          watch: (rv, onEvent) => api.watch(ApiClient.watchPath(listPath, rv), onEvent),
          nameOf: (m) => m.metadata.name,
          onList: (items) => printMachines(io, format, items, name === undefined),
          onChange: (type, m) => {
            if (one(m)) printChange(io, format, type, [m], (ms) => renderMachines(ms, io.now(), format === 'wide'), 'machine');
            return false;
          },
          sleep: io.sleep,
          warn: io.stderr,
        });
        return;
      }
      if (name !== undefined) {
        printMachines(io, format, [await api.getMachine(name)], false);
        return;
      }
      const list = await api.listMachines();
      const items = list.items.filter((m) => matches(selector, m.metadata.labels ?? {}));
      printMachines(io, format, items, true, list.metadata);
    });
  get
    .command('rollouts')
    .aliases(['rollout', 'ro'])
    .argument('[name]', 'one rollout by name')
    .description('List rollouts with their phase and progress (as rollout list); -w prints a line per change.')
    .option('-o, --output <format>', 'json, yaml or name')
    .option('-w, --watch', 'after the list, print a line per change (server-side watch) until interrupted')
    .action(async (name: string | undefined, opts: { output?: string; watch?: boolean }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml', 'name']);
      const { api } = client(cmd);
      const show = (items: readonly RolloutObject[]) => {
        if (format === 'json' || format === 'yaml') print(io, format, { apiVersion: API_VERSION, kind: 'RolloutList', items });
        else if (format === 'name') io.stdout(items.map((r) => `rollout/${r.metadata.name}\n`).join(''));
        else if (items.length === 0) io.stderr('No rollouts found.\n');
        else io.stdout(renderRollouts(items, io.now()));
      };
      if (opts.watch !== true) {
        show((await api.listRollouts(name)).items);
        return;
      }
      const listPath = `/v1/rollouts${name === undefined ? '' : `?name=${encodeURIComponent(name)}`}`;
      await follow<RolloutObject>({
        list: () => api.listRollouts(name),
        watch: (rv, onEvent) => api.watch(ApiClient.watchPath(listPath, rv), onEvent),
        nameOf: (r) => r.metadata.name,
        onList: show,
        onChange: (type, r) => {
          printChange(io, format, type, [r], (rs) => renderRollouts(rs, io.now()), 'rollout');
          return false;
        },
        sleep: io.sleep,
        warn: io.stderr,
      });
    });

  const describe = program.command('describe').description('Show everything known about one resource.');
  describe
    .command('machine')
    .aliases(['machines', 'm'])
    .argument('<name>', 'machine name')
    .description('Conditions, remediation and faults, component versions and health with reasons, CNI plugins, host, recent events.')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { api } = client(cmd);
      const machine = await api.getMachine(name);
      const events = await api.machineEvents(name, DESCRIBE_EVENTS);
      io.stdout(describeMachine(machine, events.items, io.now()));
    });
  describe
    .command('rollout')
    .aliases(['rollouts', 'ro'])
    .argument('<name>', 'rollout name')
    .description('As rollout describe: spec, status, conditions (Progressing, Paused, Failed, Complete), machines, recent events.')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { api } = client(cmd);
      const r = await api.getRollout(name);
      const events = await api.rolloutEvents(name, DESCRIBE_EVENTS);
      io.stdout(describeRollout(r, events.items, io.now()));
    });

  const token = program.command('token').description('Manage bootstrap tokens that enroll new machines.');
  token
    .command('create')
    .description('Create a bootstrap token and print the command that joins a node with it.')
    .option('--ttl <duration>', 'how long the token is valid, e.g. 30m, 1h, 24h', '1h')
    .option('--uses <n>', 'how many machines may enroll with it', '1')
    .option('--description <text>', 'what the token is for', '')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { ttl: string; uses: string; description: string; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const ttlMs = parseDuration(opts.ttl, '--ttl');
      if (ttlMs < 1000) throw usageError(CliErrorCode.badDuration, `invalid --ttl "${opts.ttl}": must be at least 1s`);
      if (!/^\d+$/.test(opts.uses) || Number(opts.uses) < 1 || !Number.isSafeInteger(Number(opts.uses))) {
        throw usageError(CliErrorCode.usage, `invalid --uses "${opts.uses}": must be a whole number of at least 1`);
      }
      const { api, cfg } = client(cmd);
      const created = await api.createToken({ ttlSeconds: Math.floor(ttlMs / 1000), uses: Number(opts.uses), description: opts.description });
      if (format === 'table') io.stdout(renderTokenCreated(cfg.server, created, io.now()));
      else print(io, format, { ...created, joinCommand: joinCommand(cfg.server, created) });
    });
  token
    .command('list')
    .alias('ls')
    .description('List bootstrap tokens (never their secrets).')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const list = await client(cmd).api.listTokens();
      if (format !== 'table') print(io, format, list);
      else if (list.items.length === 0) io.stderr('No tokens found.\n');
      else io.stdout(renderTokens(list.items, io.now()));
    });
  token
    .command('revoke')
    .alias('delete')
    .argument('<id>', 'token id (the part before the dot)')
    .description('Revoke a bootstrap token: no more machines enroll with it.')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      // Accept the whole token too, and never send its secret: only the id part.
      const res = await client(cmd).api.revokeToken(id.split('.')[0] ?? id);
      io.stdout(`token/${res.id} revoked\n`);
    });

  const machine = program.command('machine').description('Act on one machine.');
  machine
    .command('revoke')
    .argument('<name>', 'machine name')
    .description("Revoke a machine's credential: its agent is disconnected and refused.")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const m = await client(cmd).api.revokeMachine(name);
      io.stdout(`machine/${m.metadata.name} revoked\n`);
    });

  machine
    .command('reset')
    .argument('<name>', 'machine name')
    .description(
      "Void a machine's credential and key (and lift a revocation): its agent is disconnected, and the next agent that " +
        'enrolls with a bootstrap token under this name becomes the machine. For a reinstalled node, or one whose key is lost. ' +
        'Recorded as a MachineReset event.',
    )
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const m = await client(cmd).api.resetMachine(name);
      io.stdout(`machine/${m.metadata.name} reset: enroll its agent again with a bootstrap token\n`);
    });

  machine
    .command('delete')
    .argument('<name>', 'machine name')
    .option('--force', 'delete it even while a rollout holds it')
    .description('Delete a machine gone for good: its record, commands, observations and remediation state, and its Machine on the host cluster. Refused while a rollout holds it, unless --force.')
    .action(async (name: string, opts: { force?: boolean }, cmd: Command) => {
      const r = await client(cmd).api.deleteMachine(name, opts.force === true);
      io.stdout(`machine/${r.name} deleted (${r.commands} commands, ${r.observations} observations)\n`);
    });

  const pinPattern = /^([a-z][a-z0-9-]{0,62})=(v?\d+\.\d+\.\d+[0-9A-Za-z.~+-]*)$/;
  machine
    .command('pin')
    .argument('<name>', 'machine name')
    .argument('<package=version...>', 'e.g. kubelet=1.31.2')
    .description('Pin package versions on one machine over the cluster default; rollouts of another version leave it out.')
    .action(async (name: string, pins: string[], _opts: unknown, cmd: Command) => {
      const api = client(cmd).api;
      const current = (await api.getMachine(name)).spec.packages ?? [];
      const next = new Map(current.map((p) => [p.name, p.version]));
      for (const pin of pins) {
        const m = pinPattern.exec(pin);
        if (m === null) throw usageError(CliErrorCode.usage, `"${pin}" is not PACKAGE=VERSION (e.g. kubelet=1.31.2)`);
        next.set(m[1]!, m[2]!);
      }
      const updated = await api.setMachinePackages(name, [...next].map(([n, v]) => ({ name: n, version: v })));
      io.stdout(`machine/${updated.metadata.name} pinned: ${(updated.spec.packages ?? []).map((p) => `${p.name}=${p.version}`).join(', ')}\n`);
    });
  machine
    .command('unpin')
    .argument('<name>', 'machine name')
    .argument('<package...>', 'e.g. kubelet')
    .description('Remove package pins from one machine: the cluster default applies again.')
    .action(async (name: string, packages: string[], _opts: unknown, cmd: Command) => {
      const api = client(cmd).api;
      const current = (await api.getMachine(name)).spec.packages ?? [];
      const unknown = packages.filter((p) => !current.some((c) => c.name === p));
      if (unknown.length > 0) throw usageError(CliErrorCode.usage, `machine ${name} does not pin ${unknown.join(', ')}`);
      const updated = await api.setMachinePackages(name, current.filter((c) => !packages.includes(c.name)).map((c) => ({ name: c.name, version: c.version })));
      const left = (updated.spec.packages ?? []).map((p) => `${p.name}=${p.version}`).join(', ');
      io.stdout(`machine/${updated.metadata.name} unpinned ${packages.join(', ')}${left ? `; still pinned: ${left}` : ''}\n`);
    });

  for (const action of ['cordon', 'uncordon'] as const) {
    machine
      .command(action)
      .argument('<name>', 'machine name (its Node in the member cluster has the same name)')
      .description(action === 'cordon' ? "Cordon the machine's Node in the member cluster (needs the coordinator's --member-kubeconfig)." : "Uncordon the machine's Node, if nodekeeper cordoned it (an operator's own cordon is left alone).")
      .action(async (name: string, _opts: unknown, cmd: Command) => {
        const r = await client(cmd).api.nodeAction(name, action);
        io.stdout(`node/${r.machine} ${r.result}\n`);
      });
  }
  machine
    .command('drain')
    .argument('<name>', 'machine name')
    .description("Cordon the machine's Node and drain it with kubectl drain's rules: DaemonSet, static and finished pods stay; pods with no controller (--force) or with emptyDir data (--delete-emptydir-data) are refused, naming them, and nothing is evicted; the rest are evicted through the Eviction API (PodDisruptionBudgets honoured, retried with backoff) and waited for until gone. Stops at --timeout with the reason and uncordons.")
    .option('--force', 'also evict pods no controller manages (and orphaned DaemonSet pods)')
    .option('--delete-emptydir-data', 'also evict pods with emptyDir volumes (their data is deleted)')
    .option('--grace-period <seconds>', "seconds each pod gets to terminate (default: the pod's own terminationGracePeriodSeconds)")
    .option('--timeout <duration>', 'the whole drain: refused evictions and the wait for pods to go', '5m')
    .action(async (name: string, opts: { timeout: string; force?: boolean; deleteEmptydirData?: boolean; gracePeriod?: string }, cmd: Command) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      if (timeoutMs < 1000 || timeoutMs > 86_400_000) throw usageError(CliErrorCode.badDuration, `invalid --timeout "${opts.timeout}": must be 1s to 24h`);
      const grace = opts.gracePeriod === undefined ? undefined : parseCount(opts.gracePeriod, '--grace-period', 0);
      if (grace !== undefined && grace > 86_400) throw usageError(CliErrorCode.usage, `invalid --grace-period "${opts.gracePeriod}": at most 86400 seconds`);
      const { cfg } = client(cmd);
      // The drain runs inside one request: it may outlive --request-timeout by the drain's own.
      const api = new ApiClient(cfg.timeoutMs === 0 ? cfg : { ...cfg, timeoutMs: Math.max(cfg.timeoutMs, timeoutMs + 30_000) }, { userAgent: `nkctl/${io.version}` });
      const r = await api.nodeAction(name, 'drain', {
        timeoutSeconds: Math.ceil(timeoutMs / 1000),
        ...(opts.force === true ? { force: true } : {}),
        ...(opts.deleteEmptydirData === true ? { deleteEmptyDirData: true } : {}),
        ...(grace === undefined ? {} : { gracePeriodSeconds: grace }),
      });
      io.stdout(`node/${r.machine} drained: ${r.evicted?.length ?? 0} pods evicted${r.skipped && r.skipped.length > 0 ? `; left: ${r.skipped.join(', ')}` : ''}\n`);
    });

  addPackageCommands(program, get, { io, client });
  addRolloutCommands(program, { io, client });
  addRebootCommands(program, { io, client });
  addRemediationCommands(program, get, { io, client });
  addDeleteCommands(program, { io, client });
  addHostCommands(program, { io, client });
  addCredentialCommands(program, { io, client });
  addBackupCommands(program, { io, client });

  program
    .command('version')
    .description('Print the nkctl version.')
    .option('-o, --output <format>', 'json or yaml')
    .action((opts: { output?: string }) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const info = { clientVersion: io.version, apiVersion: API_VERSION };
      if (format === 'table') io.stdout(`nkctl ${io.version} (API ${API_VERSION})\n`);
      else print(io, format, info);
    });

  return program;
}

function print(io: CliIo, format: OutputFormat, obj: unknown): void {
  io.stdout(format === 'yaml' ? toYaml(obj) : toJson(obj));
}

/** Machines in the chosen format; a list prints as a MachineList, one name as the Machine itself (like kubectl). */
/**
 * One change of `get -w`: the table row alone (kubectl's way: no header after the
 * first), `-o json|yaml` the object with the change type, `-o name` the name.
 */
function printChange<T extends { metadata: { name: string } }>(io: CliIo, format: OutputFormat, type: ChangeType, items: readonly T[], table: (items: readonly T[]) => string, kind: string): void {
  if (format === 'json') io.stdout(`${JSON.stringify({ type, object: items[0] })}\n`);
  else if (format === 'yaml') print(io, 'yaml', { type, object: items[0] });
  else if (format === 'name') io.stdout(items.map((o) => `${kind}/${o.metadata.name}\n`).join(''));
  else io.stdout(table(items).split('\n').slice(1).join('\n'));
}

/** `listMeta`: the served list's metadata (its resourceVersion), kept in -o json|yaml as the API answered it. */
function printMachines(io: CliIo, format: OutputFormat, items: readonly MachineObject[], asList: boolean, listMeta?: { readonly resourceVersion?: string }): void {
  if (format === 'json' || format === 'yaml') {
    print(io, format, asList ? { apiVersion: API_VERSION, kind: 'MachineList', ...(listMeta === undefined ? {} : { metadata: listMeta }), items } : items[0]);
    return;
  }
  if (format === 'name') {
    io.stdout(items.map((m) => `machine/${m.metadata.name}\n`).join(''));
    return;
  }
  if (items.length === 0) {
    // As kubectl: the note goes to stderr so scripts reading stdout see an empty table.
    io.stderr('No machines found.\n');
    return;
  }
  io.stdout(renderMachines(items, io.now(), format === 'wide'));
}
