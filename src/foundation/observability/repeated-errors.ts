/**
 * Summarises repeated identical errors in the log. When every request fails the same way (a full
 * disk, a lost database), logging each failure in full writes megabytes a minute and buries the
 * first, informative line. The first occurrence of an error is logged in full; later identical
 * ones within the interval are only counted, and one summary line per interval says how many
 * there were ("N more like this in the last X s"). An error not seen for a whole interval is
 * logged in full again when it comes back.
 */
/** The one logger method used: pino's and fastify's request loggers both fit. */
export interface ErrorLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * How long identical errors are counted before one summary line: short enough that an operator
 * watching the log sees the failure continue, long enough that a failure on every request writes a
 * line every few seconds, not hundreds.
 */
export const REPEATED_ERROR_SUMMARY_INTERVAL_MS = 10_000;

/**
 * Distinct errors tracked at once. Errors whose message varies per occurrence would otherwise grow
 * the table without limit; beyond the bound they are logged in full, as without this helper.
 */
const MAX_TRACKED_ERRORS = 200;

export interface RepeatedErrorLogOptions {
  logger: ErrorLogger;
  /** Default REPEATED_ERROR_SUMMARY_INTERVAL_MS. */
  intervalMs?: number;
}

interface Tracked {
  /** Identical errors counted, not logged, since the last line about this error. */
  suppressed: number;
  /** Ends the current interval; set while occurrences are being counted. */
  timer: NodeJS.Timeout | undefined;
}

/** What makes two errors "identical": their code (or class name) and message. */
export function errorIdentity(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === 'string' ? code : error.name}: ${error.message}`;
  }
  return String(error);
}

export class RepeatedErrorLog {
  readonly #logger: ErrorLogger;
  readonly #intervalMs: number;
  readonly #tracked = new Map<string, Tracked>();

  constructor(options: RepeatedErrorLogOptions) {
    this.#logger = options.logger;
    this.#intervalMs = options.intervalMs ?? REPEATED_ERROR_SUMMARY_INTERVAL_MS;
  }

  /**
   * Logs `message` at error level with `fields` the first time `error` is seen in an interval;
   * counts it otherwise. `logger` overrides the constructor's (a request's child logger).
   */
  error(error: unknown, fields: Record<string, unknown>, message: string, logger: ErrorLogger = this.#logger): void {
    const key = `${message}\u0000${errorIdentity(error)}`;
    const entry = this.#tracked.get(key);
    if (entry === undefined) {
      logger.error({ ...fields, err: error }, message);
      if (this.#tracked.size < MAX_TRACKED_ERRORS)
        this.#tracked.set(key, { suppressed: 0, timer: this.#startInterval(key, message, error) });
      return;
    }
    entry.suppressed += 1;
    entry.timer ??= this.#startInterval(key, message, error);
  }

  /** Stops the timers; counts not yet summarised are logged now. */
  close(): void {
    for (const key of [...this.#tracked.keys()]) this.#endInterval(key, '', undefined, true);
  }

  #startInterval(key: string, message: string, error: unknown): NodeJS.Timeout {
    const timer = setTimeout(() => this.#endInterval(key, message, error, false), this.#intervalMs);
    // A pending summary never keeps the process alive.
    timer.unref();
    return timer;
  }

  #endInterval(key: string, message: string, error: unknown, closing: boolean): void {
    const entry = this.#tracked.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.suppressed === 0 || closing) {
      if (entry.suppressed > 0) this.#summarise(key, entry.suppressed);
      // Quiet for a whole interval: the next occurrence is logged in full again.
      this.#tracked.delete(key);
      return;
    }
    this.#summarise(key, entry.suppressed, message, error);
    entry.suppressed = 0;
    entry.timer = this.#startInterval(key, message, error);
  }

  #summarise(key: string, count: number, message?: string, error?: unknown): void {
    const seconds = this.#intervalMs / 1000;
    const about = message ?? key.slice(0, key.indexOf('\u0000'));
    const identity = error === undefined ? key.slice(key.indexOf('\u0000') + 1) : errorIdentity(error);
    this.#logger.error(
      { repeated: count, interval_seconds: seconds, error: identity },
      `${about}: ${count} more like this in the last ${seconds} s`,
    );
  }
}
