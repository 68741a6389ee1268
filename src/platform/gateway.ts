/**
 * The gateway: one server interceptor in front of every Interclear service. Before any handler
 * runs it authenticates the caller (UNAUTHENTICATED otherwise), applies the method's policy
 * (PERMISSION_DENIED otherwise) and the principal's concurrency limit (RESOURCE_EXHAUSTED
 * otherwise); after the call it records the RPC's metrics and an access log line with the
 * method, principal, status and trace id.
 */
import * as grpc from '@grpc/grpc-js';
import { ServiceError, toGrpcError } from './errors';
import type { Logger } from './logger';
import type { ServiceMetrics } from './metrics';
import { methodPolicy, type Requirement } from './policy';
import type { PrincipalResolver } from './principal';
import { extractContext } from './tracing';
import { trace } from '@opentelemetry/api';

/** Options of {@link createGatewayInterceptor}. */
export interface GatewayOptions {
  resolvePrincipal: PrincipalResolver;
  logger: Logger;
  metrics?: ServiceMetrics;
  /** Method-level policy; defaults to the one table in policy.ts. */
  policy?: Record<string, Requirement>;
  /**
   * The most unary calls one principal may have in flight on this server; the next is refused
   * at once with RESOURCE_EXHAUSTED (reason PRINCIPAL_CONCURRENCY_LIMIT). Streams are not
   * counted: HTTP/2 bounds them per connection and backpressure paces them. Default
   * {@link defaultMaxCallsPerPrincipal}.
   */
  maxCallsPerPrincipal?: number;
  /**
   * Calls refused for want of a valid client certificate are logged one by one up to
   * {@link unauthenticatedLinesPerWindow} per this many milliseconds; beyond, they are counted and
   * the count logged in one line when the next window begins (anyone who can reach the port can
   * make them). Default 10 s.
   */
  unauthenticatedLogWindowMs?: number;
}

/** Lines for calls refused UNAUTHENTICATED, per log window, before they are only counted. */
export const unauthenticatedLinesPerWindow = 20;

/**
 * Default of {@link GatewayOptions.maxCallsPerPrincipal}: far above what a well-behaved client
 * needs (the ledger benchmark keeps up to 512 calls in flight as one principal), low enough that
 * one principal cannot queue unbounded work in a process.
 */
export const defaultMaxCallsPerPrincipal = 1024;

function serviceOf(path: string): string {
  return path.split('/')[1] ?? path;
}

/** Checks `requirement` for the resolved principal; throws PERMISSION_DENIED when unmet. */
function authorize(path: string, requirement: Requirement | undefined, principal: { name: string; isAdmin: boolean }) {
  if (requirement === undefined) {
    throw new ServiceError(grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED', `method ${path} is not open to callers`);
  }
  if (requirement === 'admin' && !principal.isAdmin) {
    throw new ServiceError(
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
      `principal "${principal.name}" may not call ${path}: administrators only`,
    );
  }
}

/**
 * The HTTP/2 session (one per client connection) of a call, as grpc-js hands it to the first
 * interceptor; undefined when it is not reachable (then the principal is read every call).
 */
function connectionOf(call: grpc.ServerInterceptingCallInterface): object | undefined {
  const session = (call as { stream?: { session?: unknown } }).stream?.session;
  return typeof session === 'object' && session !== null ? session : undefined;
}

/** The refusal of a call beyond the principal's limit: the caller should back off and retry. */
function concurrencyLimitReached(principal: string, limit: number): ServiceError {
  return new ServiceError(
    grpc.status.RESOURCE_EXHAUSTED,
    'PRINCIPAL_CONCURRENCY_LIMIT',
    `principal "${principal}" already has ${limit} calls in flight on this server, its limit: retry with backoff`,
    { metadata: { principal, limit: String(limit) } },
  );
}

/**
 * Admits up to `lines` log lines per window of `windowMs`; what it refuses is counted and handed
 * to `summarise` when the next window begins.
 */
function createLogWindow(windowMs: number, lines: number, summarise: (suppressed: number, windowMs: number) => void) {
  let windowStart = 0;
  let admitted = 0;
  let suppressed = 0;
  return {
    admit(nowMs = Date.now()): boolean {
      if (nowMs - windowStart >= windowMs) {
        if (suppressed > 0) summarise(suppressed, windowMs);
        windowStart = nowMs;
        admitted = 0;
        suppressed = 0;
      }
      if (admitted < lines) {
        admitted += 1;
        return true;
      }
      suppressed += 1;
      return false;
    },
  };
}

/** The gateway interceptor for a server. */
export function createGatewayInterceptor(options: GatewayOptions): grpc.ServerInterceptor {
  const unauthenticatedLogs = createLogWindow(
    options.unauthenticatedLogWindowMs ?? 10_000,
    unauthenticatedLinesPerWindow,
    (suppressed, windowMs) =>
      options.logger.warn(
        { suppressed, window_ms: windowMs },
        `${suppressed} more calls were refused UNAUTHENTICATED without a line each`,
      ),
  );
  const policy = options.policy ?? methodPolicy;
  const maxCallsPerPrincipal = options.maxCallsPerPrincipal ?? defaultMaxCallsPerPrincipal;
  if (!Number.isInteger(maxCallsPerPrincipal) || maxCallsPerPrincipal < 1) {
    throw new Error(`maxCallsPerPrincipal must be a positive integer, got ${maxCallsPerPrincipal}`);
  }
  /** Unary calls in flight by principal; a principal with none has no entry. */
  const callsInFlight = new Map<string, number>();
  return (methodDescriptor, call) => {
    const path = methodDescriptor.path;
    const startedAt = process.hrtime.bigint();
    const unary = !methodDescriptor.requestStream && !methodDescriptor.responseStream;
    let principal = '';
    let traceId = '';
    /** Whether this call holds one of its principal's places in callsInFlight. */
    let counted = false;
    /** Counts the call's status and writes its access log line. */
    const record = (status: Pick<grpc.StatusObject, 'code' | 'details'>) => {
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const code = grpc.status[status.code] ?? String(status.code);
      options.metrics?.rpcRequests.inc({ method: path, code });
      options.metrics?.rpcDuration.observe({ method: path, code }, seconds);
      const line = {
        method: path,
        principal,
        code,
        duration_ms: Math.round(seconds * 1e4) / 10,
        trace_id: traceId || undefined,
      };
      // A refused or failed call names where it came from: an unauthenticated caller has no principal.
      if (status.code === grpc.status.INTERNAL || status.code === grpc.status.UNKNOWN) {
        options.logger.error({ ...line, peer: call.getPeer(), details: status.details }, 'rpc failed');
      } else if (status.code === grpc.status.UNAUTHENTICATED) {
        if (unauthenticatedLogs.admit()) {
          options.logger.warn({ ...line, peer: call.getPeer(), details: status.details }, 'rpc refused');
        }
      } else if (status.code === grpc.status.PERMISSION_DENIED || status.code === grpc.status.RESOURCE_EXHAUSTED) {
        options.logger.warn({ ...line, peer: call.getPeer(), details: status.details }, 'rpc refused');
      } else {
        options.logger.debug(line, 'rpc');
      }
    };
    const responder = new grpc.ResponderBuilder()
      .withStart((next) => {
        const listener = new grpc.ServerListenerBuilder()
          .withOnReceiveMetadata((metadata, nextMetadata) => {
            traceId = trace.getSpanContext(extractContext(metadata))?.traceId ?? '';
            try {
              const resolved = options.resolvePrincipal({
                metadata,
                getAuthContext: () => call.getAuthContext(),
                connection: connectionOf(call),
              });
              principal = resolved.name;
              authorize(path, policy[path], resolved);
              if (unary) {
                const calls = callsInFlight.get(principal) ?? 0;
                if (calls >= maxCallsPerPrincipal) throw concurrencyLimitReached(principal, maxCallsPerPrincipal);
                callsInFlight.set(principal, calls + 1);
                counted = true;
              }
            } catch (error) {
              const refusal =
                error instanceof ServiceError
                  ? error
                  : new ServiceError(grpc.status.INTERNAL, 'INTERNAL', 'internal error', { cause: error });
              const grpcError = toGrpcError(refusal, serviceOf(path));
              const status = { code: grpcError.code, details: grpcError.details, metadata: grpcError.metadata };
              // Sent past this interceptor's own responder: recorded here, or it would go unlogged.
              record(status);
              call.sendStatus(status);
              return;
            }
            nextMetadata(metadata);
          })
          // grpc-js calls onCancel exactly once when the call ends, however it ends: after its
          // status was sent (success or error), on the client's cancellation, the deadline, or the
          // connection closing. So the principal's place is given back here, and only here.
          .withOnCancel(() => {
            if (!counted) return;
            counted = false;
            const calls = callsInFlight.get(principal) ?? 1;
            if (calls <= 1) callsInFlight.delete(principal);
            else callsInFlight.set(principal, calls - 1);
          })
          .build();
        next(listener);
      })
      .withSendStatus((status, next) => {
        record(status);
        next(status);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
}
