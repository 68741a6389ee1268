/**
 * Server bootstrap shared by every Interclear process: a grpc-js server with health and
 * reflection, bounded message sizes, listening on one address, with a graceful stop.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthService } from '../gen/grpc/health/v1/health';
import { createHealthService, type HealthReporter } from './health';
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
    interceptors: options.interceptors ?? [],
    'grpc.max_receive_message_length': maximumMessageBytes,
    'grpc.max_send_message_length': 4 * maximumMessageBytes,
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
  for (const service of options.services) server.addService(service.definition, service.implementation);
  const health = createHealthService({
    initialStatuses: { '': HealthCheckResponse_ServingStatus.NOT_SERVING },
  });
  server.addService(HealthService, health.implementation);
  addReflectionService(server, interclearDescriptorSet());
  const credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
  );
  const host = options.address.slice(0, options.address.lastIndexOf(':'));
  let healthServer: grpc.Server | undefined;
  if (options.healthAddress) {
    healthServer = new grpc.Server();
    healthServer.addService(HealthService, health.implementation);
    await new Promise<number>((resolve, reject) =>
      healthServer!.bindAsync(options.healthAddress!, grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      ),
    );
  }
  return {
    server,
    address: `${host}:${port}`,
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
