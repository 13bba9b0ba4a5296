/**
 * The node's CNI: which network config the runtime uses, whether every plugin it names
 * is installed, speaks the config's cniVersion, and which release it is.
 * Reasons: NoNetworkConfig, InvalidNetworkConfig, PluginNotFound, PluginFailed,
 * UnsupportedCniVersion, ConfigValid (healthy), ConfigDirUnreadable (unknown).
 */
import { MAX_TEXT, type CniPlugin, type CniStatus } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import { selectConfig, type CniConfig, type InvalidConfig } from './cni-config.ts';
import { findPluginBinary, pluginRelease, queryPluginVersions } from './cni-plugins.ts';
import { observedAt, type ProbeContext } from './context.ts';

type Problem = { reason: 'PluginNotFound' | 'PluginFailed' | 'UnsupportedCniVersion'; text: string };

// When several plugins have problems, the reason names the most fundamental one.
const PRIORITY: readonly Problem['reason'][] = ['PluginNotFound', 'PluginFailed', 'UnsupportedCniVersion'];

/** Probes the CNI config dir and plugin binaries under the host root. Never throws for node faults. */
export async function probeCni(ctx: ProbeContext): Promise<CniStatus> {
  const { hostRoot, cni } = ctx.config;
  const dir = resolveHostPath(hostRoot, cni.confDir);
  const empty = { version: null, configFile: null, networkName: null, cniVersion: null, plugins: [] };
  const at = (): string => observedAt(ctx);

  const selection = await selectConfig(dir);
  switch (selection.kind) {
    case 'no-dir':
      return { ...empty, health: 'unhealthy', reason: 'NoNetworkConfig', message: `CNI config dir ${cni.confDir} does not exist`, observedAt: at() };
    case 'empty':
      return { ...empty, health: 'unhealthy', reason: 'NoNetworkConfig', message: `no .conf, .conflist or .json file in ${cni.confDir}`, observedAt: at() };
    case 'unreadable':
      return { ...empty, health: 'unknown', reason: 'ConfigDirUnreadable', message: `cannot read ${cni.confDir}: ${selection.detail}`, observedAt: at() };
    case 'all-invalid':
      return {
        ...empty,
        health: 'unhealthy',
        reason: 'InvalidNetworkConfig',
        message: bounded(`no valid network config in ${cni.confDir}: ${describeInvalid(selection.invalid)}`),
        observedAt: at(),
      };
    case 'chosen':
      return probeChosen(ctx, selection.config, selection.passedOver);
  }
}

async function probeChosen(ctx: ProbeContext, config: CniConfig, passedOver: readonly InvalidConfig[]): Promise<CniStatus> {
  const { hostRoot, cni } = ctx.config;
  // Main plugins first, then IPAM delegates not already listed: each binary is checked once.
  const types: string[] = [];
  for (const p of config.plugins) if (!types.includes(p.type)) types.push(p.type);
  for (const p of config.plugins) if (p.ipamType !== null && !types.includes(p.ipamType)) types.push(p.ipamType);

  const checked = await Promise.all(types.map(async (type): Promise<{ plugin: CniPlugin; problem: Problem | null }> => {
    const lookup = await findPluginBinary(hostRoot, cni.binDirs, type);
    if (lookup.kind === 'missing') {
      const notExec = lookup.notExecutable.length > 0 ? ` (present but not executable: ${lookup.notExecutable.join(', ')})` : '';
      const text = `plugin ${type} not found in ${lookup.searched.join(', ')}${notExec}`;
      return { plugin: { type, binary: null, supportedVersions: [], version: null }, problem: { reason: 'PluginNotFound', text } };
    }
    const [answer, version] = await Promise.all([
      queryPluginVersions(ctx.run, lookup.file, config.cniVersion, cni.timeoutMs),
      pluginRelease(ctx.run, lookup, { hostRoot, recordedVersionsFile: cni.recordedVersionsFile, timeoutMs: cni.timeoutMs }),
    ]);
    const binary = lookup.hostPath;
    if (answer.kind === 'failed') {
      const text = `plugin ${type} (${binary}) failed the VERSION call: ${answer.detail}`;
      return { plugin: { type, binary, supportedVersions: [], version }, problem: { reason: 'PluginFailed', text } };
    }
    const plugin = { type, binary, supportedVersions: [...answer.supportedVersions], version };
    if (answer.supportedVersions.includes(config.cniVersion)) return { plugin, problem: null };
    const text = `plugin ${type} does not support cniVersion ${config.cniVersion} (supports ${answer.supportedVersions.join(', ')})`;
    return { plugin, problem: { reason: 'UnsupportedCniVersion', text } };
  }));
  const plugins = checked.map((c) => c.plugin);
  const problems = checked.flatMap((c) => (c.problem === null ? [] : [c.problem]));

  const chosenName = config.file.slice(resolveHostPath(hostRoot, cni.confDir).length + 1);
  const note = passedOver.length === 0
    ? ''
    : `; passed over invalid ${describeInvalid(passedOver)} (containerd's go-cni stops at the first invalid file, so the runtime may report NetworkReady=false)`;
  const fields = {
    // The network's release is the main plugin's: the one the runtime executes first.
    version: plugins[0]?.version ?? null,
    configFile: `${cni.confDir.replace(/\/+$/, '')}/${chosenName}`,
    networkName: config.name,
    cniVersion: config.cniVersion,
    plugins,
    observedAt: observedAt(ctx),
  };
  const worst = PRIORITY.map((reason) => problems.filter((p) => p.reason === reason)).find((list) => list.length > 0);
  if (worst !== undefined && worst[0] !== undefined) {
    const all = [...worst, ...problems.filter((p) => p.reason !== worst[0]?.reason)];
    return { ...fields, health: 'unhealthy', reason: worst[0].reason, message: bounded(`network ${config.name} (${chosenName}): ${all.map((p) => p.text).join('; ')}${note}`) };
  }
  return {
    ...fields,
    health: 'healthy',
    reason: 'ConfigValid',
    message: bounded(`network ${config.name} (${chosenName}, cniVersion ${config.cniVersion}): plugins ${types.join(', ')} installed and support it${note}`),
  };
}

/** Messages are bounded by the protocol (MAX_TEXT); a dir full of broken files must not break the report. */
function bounded(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT - 3)}...`;
}

function describeInvalid(invalid: readonly InvalidConfig[]): string {
  return invalid.map((i) => `${i.file.split('/').pop() ?? i.file}: ${i.problem}`).join('; ');
}
