/**
 * Structured logging with pino. Redaction is by path so that tokens, keys, credentials and
 * demographics never reach a log line even if a caller logs a whole object by mistake.
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Paths pino replaces with "[redacted]"; `*` matches one level of nesting. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  '*.authorization',
  'token',
  '*.token',
  'bearer_token',
  '*.bearer_token',
  '*.bearerToken',
  'bearerToken',
  'secret',
  '*.secret',
  'api_key',
  '*.api_key',
  'credential',
  '*.credential',
  'private_key',
  '*.private_key',
  'private_key_pkcs8',
  '*.private_key_pkcs8',
  'consent_token_payload',
  '*.consent_token_payload',
  'consent_token_signature',
  '*.consent_token_signature',
  'signed_nonce',
  '*.signed_nonce',
  'patient_profile',
  '*.patient_profile',
  'profile',
  '*.profile',
  'display_name',
  '*.display_name',
  'date_of_birth',
  '*.date_of_birth',
  'storage.url',
  '*.storage.url',
];

export interface LoggerOptions {
  level: LevelWithSilent | string;
  pretty: 'auto' | 'always' | 'never';
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    base: { service: 'neuron' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const pretty =
    options.pretty === 'always' || (options.pretty === 'auto' && options.destination === undefined && process.stdout.isTTY === true);
  if (pretty) {
    // https://no-color.org: a non-empty NO_COLOR turns colour off, even where a terminal could show it.
    const colorize = (process.env['NO_COLOR'] ?? '') === '';
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } },
    });
  }
  return options.destination ? pino(base, options.destination as pino.DestinationStream) : pino(base);
}
