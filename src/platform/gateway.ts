/**
 * The gateway: one server interceptor in front of every Interclear service. Before any handler
 * runs it authenticates the caller (UNAUTHENTICATED otherwise) and applies the method's policy
 * (PERMISSION_DENIED otherwise); after the call it records the RPC's metrics and an access log
 * line with the method, principal, status and trace id.
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
}

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

/** The gateway interceptor for a server. */
export function createGatewayInterceptor(options: GatewayOptions): grpc.ServerInterceptor {
  const policy = options.policy ?? methodPolicy;
  return (methodDescriptor, call) => {
    const path = methodDescriptor.path;
    const startedAt = process.hrtime.bigint();
    let principal = '';
    let traceId = '';
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
      } else if (status.code === grpc.status.UNAUTHENTICATED || status.code === grpc.status.PERMISSION_DENIED) {
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
              const resolved = options.resolvePrincipal({ metadata, getAuthContext: () => call.getAuthContext() });
              principal = resolved.name;
              authorize(path, policy[path], resolved);
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
