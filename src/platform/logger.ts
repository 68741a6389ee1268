/** Structured JSON logs (pino). Secrets and fulfillments are never passed to a logger. */
import pino from 'pino';

export type Logger = pino.Logger;

/** A logger for `service`, level from LOG_LEVEL (default "info"; "silent" turns it off). */
export function createLogger(service: string, options: { level?: string; destination?: number | string } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  return pino(
    { name: service, level, base: { service, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: options.destination ?? 1, sync: false }),
  );
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = pino({ level: 'silent' });
