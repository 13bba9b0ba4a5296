/**
 * The one place loggers are made. Apps create a root logger at start-up and pass it
 * (or children with fixed bindings) down; nothing imports a global logger.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(opts: { name: string; level?: LevelWithSilent; destination?: number | string }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      // Credentials and tokens never reach a log line, even by accident.
      redact: { paths: ['token', 'credential', 'authorization', '*.token', '*.credential', 'req.headers.authorization'], censor: '[redacted]' },
    },
    pino.destination({ dest: opts.destination ?? 2, sync: true }),
  );
}
