/**
 * How the coordinator's processes log: JSON lines on stderr, written in the background so
 * that a log reader that falls behind (journald under load, a busy parent) never stalls
 * the event loop (packages/common logger.ts says why). At most this many bytes wait; a
 * line past it is dropped and counted in nodekeeper_log_lines_dropped_total.
 */
export const LOG_BUFFER_BYTES = 8 * 1024 * 1024;
