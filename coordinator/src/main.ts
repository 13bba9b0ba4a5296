/**
 * `nodekeeper-coordinator`: parses the configuration, starts the coordinator, and
 * shuts it down cleanly on SIGTERM/SIGINT (flushing batched writes).
 */
import { AppError, createLogger } from '@nodekeeper/common';
import { LOG_BUFFER_BYTES } from './logging.ts';

async function main(): Promise<number> {
  // `restore` is a one-shot command on a stopped coordinator's data dir, not a server option.
  if (process.argv[2] === 'restore') {
    const { restoreMain } = await import('./backup/restore.ts');
    return restoreMain(process.argv.slice(3), (s) => process.stdout.write(s), (s) => process.stderr.write(s));
  }
  // A gateway worker (--gateway-workers), forked by the coordinator with an IPC channel:
  // its whole setup comes over that channel, never argv or env (gateway/worker-main.ts).
  if (process.argv[2] === 'gateway-worker') {
    const { workerMain } = await import('./gateway/worker-main.ts');
    await workerMain();
    return await new Promise<number>(() => {}); // runs until the writer goes (worker-main exits then)
  }
  // Imported here, not at the top: a gateway worker loads none of the store, the
  // controllers or the Kubernetes clients (a few MB of RSS and seconds of start-up each).
  const { startCoordinator } = await import('./app.ts');
  const { loadConfig, usage } = await import('./config.ts');
  const { unavailableCode } = await import('./store/store-health.ts');
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`nodekeeper-coordinator: ${(err as Error).message}${err instanceof AppError ? ` (${err.code})` : ''}\n`);
    return 2;
  }
  if (loaded.help) {
    process.stdout.write(usage);
    return 0;
  }
  const { config } = loaded;
  const log = createLogger({ name: 'nodekeeper-coordinator', level: config.logLevel, maxBufferedBytes: LOG_BUFFER_BYTES });
  // Last line of defence for invariant 11: a store outage that escaped its caller (a
  // late callback recording an event on a full disk) is reported by StoreHealth and
  // retried; it must not end the process. Any other escaped error is a bug: exit.
  const escaped = (kind: string) => (err: unknown) => {
    if (unavailableCode(err) !== null) {
      log.warn({ err, kind }, 'a store write failed outside a controller; it is retried');
      return;
    }
    log.fatal({ err, kind }, 'unexpected error; exiting');
    process.exit(70);
  };
  process.on('uncaughtException', escaped('uncaughtException'));
  process.on('unhandledRejection', escaped('unhandledRejection'));
  let running;
  try {
    running = await startCoordinator(config, log);
  } catch (err) {
    log.fatal({ err, code: err instanceof AppError ? err.code : undefined }, 'coordinator failed to start');
    // One plain line too, for an operator reading a terminal or `systemctl status`.
    if (err instanceof AppError) process.stderr.write(`nodekeeper-coordinator: ${err.message} (${err.code})\n`);
    return 1;
  }
  // A single line on stdout that scripts (the demo, tests) can wait for.
  process.stdout.write(`${JSON.stringify({ listening: running.url, port: running.port, caHash: running.caHash })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await running.close();
  return 0;
}

process.exitCode = await main();
