/**
 * A fault from a peer, a file, a machine or the network: a stable `code` (listed in
 * docs/errors.md), a message a human can act on, typed context and the cause.
 * Misuse by a caller throws TypeError/RangeError instead.
 */
export class AppError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, opts: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.context = Object.freeze({ ...opts.context });
  }

  /** The shape sent over the wire and in HTTP error bodies. */
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** True when `err` is an AppError carrying `code`. */
export function hasCode(err: unknown, code: string): err is AppError {
  return err instanceof AppError && err.code === code;
}
