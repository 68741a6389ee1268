/**
 * Adapters from promise-returning functions to grpc-js handlers, mapping every failure to a
 * status once, here at the edge: ServiceError with its details, an unreachable database to
 * UNAVAILABLE, anything else to INTERNAL with a generic message and the cause logged.
 */
import * as grpc from '@grpc/grpc-js';
import { isDatabaseUnavailableError } from './database';
import { ServiceError, toGrpcError } from './errors';
import { requestContext } from './context';
import type { Logger } from './logger';
import { extractContext, inSpan, SpanKind } from './tracing';

/**
 * Maps any thrown value to the ServiceError a client sees: itself, an unreachable database as
 * UNAVAILABLE, anything else as INTERNAL with a generic message (the cause is logged).
 */
export function asServiceError(error: unknown, logger: Logger, method: string): ServiceError {
  if (error instanceof ServiceError) return error;
  if (isDatabaseUnavailableError(error)) {
    logger.warn({ method, err: error }, 'database unavailable');
    return new ServiceError(
      grpc.status.UNAVAILABLE,
      'DATABASE_UNAVAILABLE',
      'the database is unavailable; retry later',
    );
  }
  logger.error({ method, err: error }, 'unexpected failure');
  return new ServiceError(grpc.status.INTERNAL, 'INTERNAL', 'internal error');
}

/** Maps any thrown value to the error a client receives. */
export function toClientError(error: unknown, domain: string, logger: Logger, method: string): grpc.ServiceError {
  return toGrpcError(asServiceError(error, logger, method), domain);
}

/**
 * A unary handler from an async function: runs it in a server span that continues the caller's
 * trace, with the method in the request context (for log lines), and maps its failure.
 */
export function unary<Request, Response>(
  domain: string,
  logger: Logger,
  method: string,
  handler: (request: Request, call: grpc.ServerUnaryCall<Request, Response>) => Promise<Response> | Response,
): grpc.handleUnaryCall<Request, Response> {
  const path = `/${domain}/${method}`;
  return (call, callback) => {
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : undefined;
    requestContext.run({ method: path, deadlineMs }, () => {
      inSpan(
        `${domain}/${method}`,
        {
          kind: SpanKind.SERVER,
          parent: extractContext(call.metadata),
          attributes: { 'rpc.system': 'grpc', 'rpc.service': domain, 'rpc.method': method },
        },
        async () => handler(call.request, call),
      ).then(
        (response) => callback(null, response),
        (error) => callback(toClientError(error, domain, logger, method)),
      );
    });
  };
}

/** Runs a server-streaming handler's body with the method in the request context. */
export function inStreamContext(domain: string, method: string, body: () => Promise<void>): void {
  requestContext.run({ method: `/${domain}/${method}` }, () => void body());
}

/** Writes `message` to a server stream, waiting while the client is not reading (backpressure). */
export async function writeWithBackpressure<Response>(
  call: grpc.ServerWritableStream<unknown, Response>,
  message: Response,
  signal: AbortSignal,
): Promise<void> {
  if (call.write(message)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** An AbortSignal that fires when the client cancels `call` or the server ends it. */
export function signalFor(call: grpc.ServerWritableStream<unknown, unknown>): AbortController {
  const controller = new AbortController();
  const abort = () => controller.abort();
  call.on('cancelled', abort);
  call.on('close', abort);
  call.on('error', abort);
  return controller;
}

/** Ends a server stream with `error` as its status (grpc-js sends the status of an 'error' event). */
export function failStream(call: grpc.ServerWritableStream<unknown, unknown>, error: grpc.ServiceError): void {
  call.emit('error', error);
}
