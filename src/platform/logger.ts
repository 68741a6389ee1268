/** Structured JSON logs (pino). Secrets and fulfillments are never passed to a logger. */
import pino from 'pino';
import { requestContext } from './context';
import { activeTraceId } from './tracing';

export type Logger = pino.Logger;

/** A logger for `service`, level from LOG_LEVEL (default "info"; "silent" turns it off). */
export function createLogger(service: string, options: { level?: string; destination?: number | string } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  return pino(
    {
      name: service,
      level,
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Every line of a request carries its trace, method and principal.
      mixin() {
        const store = requestContext.getStore();
        const traceId = activeTraceId();
        return {
          ...(traceId ? { trace_id: traceId } : {}),
          ...(store ? { method: store.method, principal: store.principal } : {}),
        };
      },
    },
    pino.destination({ dest: options.destination ?? 1, sync: false }),
  );
}

/**
 * Writes out at once what `logger` has buffered. Lines are written asynchronously, so a process
 * killed the next moment (SIGKILL, the OOM killer) loses its last ones; an alarm an operator must
 * see whatever happens next (a connector's lost money) is followed by this.
 */
export function flushLogsNow(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym];
  try {
    stream?.flushSync?.();
  } catch {
    // The destination is not open yet (its first write is still queued): nothing to flush.
  }
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = pino({ level: 'silent' });
