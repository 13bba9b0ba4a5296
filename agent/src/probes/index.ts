/**
 * The agent's probes: each returns the protocol's typed result and never throws for a
 * node fault. Build a context once (config, clock, command runner) and pass it to each.
 */
export { defaultProbeConfig, resolveHostPath, type ProbeConfig } from './config.ts';
export { createProbeContext, type ProbeContext } from './context.ts';
export { runCommand, type CommandRunner, type CommandResult, type CommandOptions } from './run-command.ts';
export { probeService } from './service.ts';
export { probeKubelet } from './kubelet.ts';
export { probeRuntime } from './cri.ts';
export { probeCni } from './cni.ts';
export { probeHost } from './host.ts';
