/**
 * The one place loggers are made. Apps create a root logger at start-up and pass it
 * (or children with fixed bindings) down; nothing imports a global logger.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

let dropped = 0;

/** Log lines a non-blocking logger (`maxBufferedBytes`) dropped since start, because its reader fell behind. */
export function droppedLogLines(): number {
  return dropped;
}

/**
 * A logger writing JSON lines to `destination` (stderr by default).
 *
 * Writes are synchronous unless `maxBufferedBytes` is given. A synchronous write to a
 * pipe whose reader is behind (journald under load, a busy parent process) blocks the
 * event loop: pino's writer sleeps 100 ms at a time until the pipe takes the line. That
 * was 5 s of a coordinator's reconnect storm at 19,000 agents. A process that must never
 * wait for its log reader passes `maxBufferedBytes`: lines are written in the background,
 * at most that many bytes wait, and a line that would go over is dropped and counted
 * (droppedLogLines). What waits is written at exit, including a fatal error's exit; a
 * kill -9 loses it.
 */
export function createLogger(opts: { name: string; level?: LevelWithSilent; destination?: number | string; maxBufferedBytes?: number }): Logger {
  const nonBlocking = opts.maxBufferedBytes !== undefined;
  const stream = pino.destination({ dest: opts.destination ?? 2, sync: !nonBlocking, ...(nonBlocking ? { maxLength: opts.maxBufferedBytes } : {}) });
  if (nonBlocking) stream.on('drop', () => (dropped += 1));
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      // Credentials and tokens never reach a log line, even by accident.
      redact: { paths: ['token', 'credential', 'authorization', '*.token', '*.credential', 'req.headers.authorization'], censor: '[redacted]' },
    },
    stream,
  );
}
