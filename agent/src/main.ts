/**
 * `nodekeeper-agent`: loads the configuration, enrolls on first start (CA discovery
 * pinned by hash, bootstrap token traded for a machine credential), then runs the
 * agent until SIGTERM/SIGINT.
 */
import { AppError, createLogger, type Logger } from '@nodekeeper/common';
import { Agent, type AgentCredentials } from './agent.ts';
import { loadConfig, usage, type AgentConfig } from './config.ts';
import { discoverCa, enroll, loadState, saveState } from './enrollment.ts';
import { ensureMachineKey } from './machine-key.ts';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Loads the saved credential, or enrolls with the bootstrap token; and the machine key. */
async function credentials(config: AgentConfig, agent: Agent, log: Logger): Promise<AgentCredentials> {
  const saved = loadState(config.stateDir);
  // Agents enrolled before machine keys existed make one now; their hello registers it.
  const key = await ensureMachineKey(config.stateDir);
  if (saved !== null) {
    if (config.caFile !== null) return { ...saved, caPem: readFileSync(config.caFile, 'utf8'), key };
    return { ...saved, key };
  }
  if (config.token === null) {
    throw new AppError('NK_AGENT_NOT_ENROLLED', `no machine credential in ${config.stateDir}; start once with --token and --discovery-ca-hash (see 'nkctl token create')`);
  }
  let caPem: string | null = null;
  if (config.server.startsWith('https:')) {
    if (config.caFile !== null) caPem = readFileSync(config.caFile, 'utf8');
    else if (config.discoveryCaHash !== null) caPem = await discoverCa(config.server, config.discoveryCaHash);
    else throw new AppError('NK_CONFIG_INVALID', 'an https server needs --discovery-ca-hash (or --ca-file) to be trusted on first contact');
  }
  const identity = await agent.identity();
  const { machine, credential } = await enroll(config.server, caPem, config.token, identity, agent.version, key.publicKey);
  await saveState(config.stateDir, { credential, caPem });
  log.info({ machine }, 'enrolled; the bootstrap token is no longer needed');
  return { credential, caPem, key };
}

async function main(): Promise<number | 'exit'> {
  let config: AgentConfig;
  try {
    const loaded = loadConfig(process.argv.slice(2), process.env);
    if (loaded.help) {
      process.stdout.write(usage);
      return 0;
    }
    config = loaded.config;
  } catch (err) {
    process.stderr.write(`nodekeeper-agent: ${(err as Error).message}${err instanceof AppError ? ` (${err.code})` : ''}\n`);
    return 2;
  }
  const log = createLogger({ name: 'nodekeeper-agent', level: config.logLevel });
  let state: AgentCredentials;
  try {
    // A placeholder state lets identity() run before enrollment; the real one replaces it.
    const probe = new Agent(config, { credential: '', caPem: null, key: null }, log);
    state = await credentials(config, probe, log);
  } catch (err) {
    log.fatal({ err, code: err instanceof AppError ? err.code : undefined }, (err as Error).message);
    return 1;
  }
  let agent: Agent;
  try {
    agent = new Agent(config, state, log);
  } catch (err) {
    log.fatal({ err, code: err instanceof AppError ? err.code : undefined }, (err as Error).message);
    return 1;
  }
  agent.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('stopping');
  const closed = agent.stop();
  // A command may be far from its end (an install waiting minutes for a kubelet's health):
  // waiting for it would run into systemd's TimeoutStopSec= and a SIGKILL, the unit marked
  // failed. Every install step is journaled so that a kill anywhere is recovered at the next
  // start; a short grace lets a command about to finish do so, then the agent exits (the
  // install's timers would otherwise keep Node alive).
  const left = await agent.settle(STOP_GRACE_MS);
  if (left.length > 0) log.warn({ commands: left }, `stopping with ${left.length} command(s) still running; the install journal finishes them at the next start`);
  else log.info('stopped');
  // The close frame out before exiting, so the coordinator sees a clean "going away"; bounded:
  // a coordinator that does not answer it must not hold the stop.
  await Promise.race([closed, sleep(1000)]);
  return 'exit';
}

/** How long a stop waits for running commands (well under the unit's TimeoutStopSec=30s). */
const STOP_GRACE_MS = 5000;

const code = await main();
if (code === 'exit') process.exit(0);
process.exitCode = code;
