/**
 * Server bootstrap shared by every Interclear process: a grpc-js server with health and
 * reflection, bounded message sizes, listening on one address, with a graceful stop.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthService } from '../gen/grpc/health/v1/health';
import { invalidArgument, toGrpcError } from './errors';
import {
  createHealthService,
  LIVENESS_HEALTH_SERVICE_NAME,
  OVERALL_HEALTH_SERVICE_NAME,
  type HealthReporter,
} from './health';
import { addReflectionService } from './reflection';

/** The largest request or response a server accepts (ILP packets are at most 32 KiB). */
export const maximumMessageBytes = 1024 * 1024;

/** One service a server hosts. */
export interface HostedService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** A listening server. */
export interface RunningServer {
  server: grpc.Server;
  /** host:port actually bound (the port resolved when 0 was asked). */
  address: string;
  /** host:port the plaintext health-only listener actually bound, when one was asked for. */
  healthAddress?: string;
  health: HealthReporter;
  /** Reports NOT_SERVING, finishes in-flight calls for up to graceMs, then stops. */
  stop(graceMs?: number): Promise<void>;
}

let descriptorSet: Buffer | undefined;

/** The FileDescriptorSet of every Interclear proto, as `npm run generate` built it. */
export function interclearDescriptorSet(): Buffer {
  descriptorSet ??= readFileSync(path.join(__dirname, '..', 'gen', 'descriptors.binpb'));
  return descriptorSet;
}

/** A request whose bytes are not a valid message: what the deserializer returns instead of throwing. */
class MalformedRequest {
  constructor(readonly description: string) {}
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * `definition` with request deserializers that never throw: grpc-js answers a throwing one with
 * INTERNAL, so a client's malformed bytes would look like a server fault. Strings must be valid
 * UTF-8 (as proto3 requires) instead of being silently replaced by U+FFFD; a request that does
 * not decode becomes a {@link MalformedRequest}, refused by {@link refuseMalformedRequests}.
 * (Every definition served here is ts-proto's, whose deserializer hands its argument to decode.)
 */
function withTolerantDecoding(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const tolerant: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    tolerant[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          // ts-proto's decode accepts a reader: ours decodes strings strictly.
          const reader = new BinaryReader(bytes, (text) => strictUtf8.decode(text));
          return method.requestDeserialize(reader as unknown as Buffer);
        } catch (error) {
          return new MalformedRequest((error as Error).message);
        }
      },
    };
  }
  return tolerant;
}

/** Answers a {@link MalformedRequest} with INVALID_ARGUMENT before any handler sees it. */
const refuseMalformedRequests: grpc.ServerInterceptor = (methodDescriptor, call) => {
  let refused = false;
  const responder = new grpc.ResponderBuilder()
    .withStart((next) => {
      const listener = new grpc.ServerListenerBuilder()
        .withOnReceiveMessage((message, nextMessage) => {
          if (!(message instanceof MalformedRequest)) return nextMessage(message);
          refused = true;
          const error = toGrpcError(
            invalidArgument([{ field: '', description: `not a valid request message: ${message.description}` }]),
            methodDescriptor.path.split('/')[1] ?? methodDescriptor.path,
          );
          call.sendStatus({ code: error.code, details: error.details, metadata: error.metadata });
        })
        // The handler never got a request: it must not run on the end of the stream either.
        .withOnReceiveHalfClose((nextHalfClose) => {
          if (!refused) nextHalfClose();
        })
        .build();
      next(listener);
    })
    .build();
  return new grpc.ServerInterceptingCall(call, responder);
};

/** Starts a server on `address` ("host:port") hosting `services`, health and reflection. */
export async function startServer(options: {
  address: string;
  services: HostedService[];
  credentials?: grpc.ServerCredentials;
  /** The gateway and any other interceptors, outermost first. */
  interceptors?: grpc.ServerInterceptor[];
  /**
   * A second, plaintext listener serving only grpc.health.v1, for Kubernetes probes (which
   * cannot present client certificates).
   */
  healthAddress?: string;
}): Promise<RunningServer> {
  const server = new grpc.Server({
    // After the gateway: it authenticates the caller first, and logs the refusal.
    interceptors: [...(options.interceptors ?? []), refuseMalformedRequests],
    'grpc.max_receive_message_length': maximumMessageBytes,
    'grpc.max_send_message_length': 4 * maximumMessageBytes,
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
  for (const service of options.services) {
    server.addService(withTolerantDecoding(service.definition), service.implementation);
  }
  // The whole server ("") is NOT_SERVING until the service says it is ready (its dependencies
  // are up); "liveness" is SERVING for as long as the server runs: health.shutdown() on stop
  // reports it NOT_SERVING. Readiness probes check the first, liveness and startup probes the second.
  const health = createHealthService({
    initialStatuses: {
      [OVERALL_HEALTH_SERVICE_NAME]: HealthCheckResponse_ServingStatus.NOT_SERVING,
      [LIVENESS_HEALTH_SERVICE_NAME]: HealthCheckResponse_ServingStatus.SERVING,
    },
  });
  server.addService(withTolerantDecoding(HealthService), health.implementation);
  addReflectionService(server, interclearDescriptorSet());
  const credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
  );
  const host = options.address.slice(0, options.address.lastIndexOf(':'));
  let healthServer: grpc.Server | undefined;
  let healthAddress: string | undefined;
  if (options.healthAddress) {
    healthServer = new grpc.Server();
    healthServer.addService(HealthService, health.implementation);
    const healthPort = await new Promise<number>((resolve, reject) =>
      healthServer!.bindAsync(options.healthAddress!, grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      ),
    );
    healthAddress = `${options.healthAddress.slice(0, options.healthAddress.lastIndexOf(':'))}:${healthPort}`;
  }
  return {
    server,
    address: `${host}:${port}`,
    healthAddress,
    health,
    stop: async (graceMs = 5000) => {
      health.shutdown();
      healthServer?.forceShutdown();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
