/**
 * The standard gRPC health service (`grpc.health.v1.Health`: Check, List, Watch), modelled on
 * grpc-node's grpc-health-check. Load balancers, Kubernetes probes and `grpc_health_probe` use it;
 * the service name "" stands for the whole server.
 */
import * as grpc from '@grpc/grpc-js';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthListResponse,
  type HealthServer,
} from '../gen/grpc/health/v1/health';

/** The statuses a service can be set to; SERVICE_UNKNOWN is only ever reported by Watch. */
export type SettableServingStatus = ServingStatus.SERVING | ServingStatus.NOT_SERVING | ServingStatus.UNKNOWN;

/** The name under which the health of the server as a whole is reported. */
export const OVERALL_HEALTH_SERVICE_NAME = '';

/**
 * The name under which a server reports only that its process is up: SERVING from the moment it
 * listens until it stops, whatever its dependencies (database, ledger streams) do. Liveness and
 * startup probes check it, so an outage of a dependency takes a pod out of its Service (readiness
 * checks "") without restarting it.
 */
export const LIVENESS_HEALTH_SERVICE_NAME = 'liveness';

/** Options of {@link createHealthService}. */
export interface HealthServiceOptions {
  /** Statuses known from the start, by service name. Default: the whole server ("") SERVING. */
  readonly initialStatuses?: Readonly<Record<string, SettableServingStatus>>;
  /** Most Watch streams open at once; more fail with RESOURCE_EXHAUSTED. Default 1000. */
  readonly watchersMax?: number;
  /** Most services List reports; more fail with RESOURCE_EXHAUSTED, as in grpc-node. Default 100. */
  readonly listedServicesMax?: number;
}

/** A health service: its gRPC implementation and the controls the rest of the server uses. */
export interface HealthReporter {
  /**
   * The implementation of `grpc.health.v1.Health`, for
   * `server.addService(HealthService, reporter.implementation)`.
   */
  readonly implementation: HealthServer;
  /**
   * Records the status of `serviceName` ("" for the whole server) and tells its watchers if it
   * changed. Ignored after {@link HealthReporter.shutdown}, so that a late update from a
   * component cannot report a stopping server as SERVING.
   */
  setStatus(serviceName: string, status: SettableServingStatus): void;
  /**
   * Reports every service NOT_SERVING, then ends every Watch stream so that a graceful
   * `server.tryShutdown` is not held open by them. Later Watch calls get NOT_SERVING and end.
   */
  shutdown(): void;
}

/** One open Watch stream; at most one status waits while the client is not reading. */
interface Watcher {
  readonly serviceName: string;
  readonly call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;
  lastSentStatus: ServingStatus | undefined;
  /** Set once the stream is ended by shutdown; nothing may be written after that. */
  isEnded: boolean;
  /** The latest status not yet sent because the stream's buffer is full; older ones are dropped. */
  waitingStatus: ServingStatus | undefined;
  waitingForDrain: boolean;
}

const WATCHERS_MAX_DEFAULT = 1000;
const LISTED_SERVICES_MAX_DEFAULT = 100;

/**
 * Creates a health service. Check answers NOT_FOUND for a service never set; Watch sends the
 * current status first (SERVICE_UNKNOWN for a service never set), then each change, until the
 * client cancels.
 *
 * @example
 * const health = createHealthService();
 * server.addService(HealthService, health.implementation);
 * health.setStatus('interclear.ledger.v1.LedgerService', ServingStatus.SERVING);
 */
export function createHealthService(options: HealthServiceOptions = {}): HealthReporter {
  const watchersMax = options.watchersMax ?? WATCHERS_MAX_DEFAULT;
  const listedServicesMax = options.listedServicesMax ?? LISTED_SERVICES_MAX_DEFAULT;
  const initialStatuses = options.initialStatuses ?? { [OVERALL_HEALTH_SERVICE_NAME]: ServingStatus.SERVING };

  const statusByServiceName = new Map<string, ServingStatus>();
  const watchers = new Set<Watcher>();
  let isShutDown = false;

  for (const [serviceName, status] of Object.entries(initialStatuses)) {
    assertSettableStatus(status);
    statusByServiceName.set(serviceName, status);
  }

  const sendStatus = (watcher: Watcher, status: ServingStatus): void => {
    if (watcher.isEnded) return;
    if (watcher.waitingForDrain) {
      watcher.waitingStatus = status;
      return;
    }
    watcher.waitingStatus = undefined;
    // Watchers want changes, not repeats: a setStatus with the same value sends nothing.
    if (status === watcher.lastSentStatus) return;
    watcher.lastSentStatus = status;
    if (!watcher.call.write({ status })) {
      // A client that does not read only ever needs the latest status, so we keep one.
      watcher.waitingForDrain = true;
      watcher.call.once('drain', () => {
        watcher.waitingForDrain = false;
        if (watcher.waitingStatus !== undefined) sendStatus(watcher, watcher.waitingStatus);
      });
    }
  };

  const setStatus = (serviceName: string, status: SettableServingStatus): void => {
    assertSettableStatus(status);
    if (isShutDown) return;
    statusByServiceName.set(serviceName, status);
    for (const watcher of watchers) {
      if (watcher.serviceName === serviceName) sendStatus(watcher, status);
    }
  };

  const shutdown = (): void => {
    if (isShutDown) return;
    for (const serviceName of statusByServiceName.keys()) {
      statusByServiceName.set(serviceName, ServingStatus.NOT_SERVING);
    }
    isShutDown = true;
    for (const watcher of watchers) endWatch(watcher);
    watchers.clear();
  };

  /**
   * Ends a Watch stream with NOT_SERVING as its last status. The write may go one message past
   * the buffer's mark, which stays bounded; end() delivers it before the OK status.
   */
  const endWatch = (watcher: Watcher): void => {
    if (watcher.lastSentStatus !== ServingStatus.NOT_SERVING) watcher.call.write({ status: ServingStatus.NOT_SERVING });
    watcher.lastSentStatus = ServingStatus.NOT_SERVING;
    watcher.isEnded = true;
    watcher.call.end();
  };

  const currentStatus = (serviceName: string): ServingStatus | undefined => statusByServiceName.get(serviceName);

  const implementation: HealthServer = {
    check: (call, callback) => {
      const status = currentStatus(call.request.service);
      if (status === undefined) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service: ${call.request.service}` });
        return;
      }
      callback(null, { status });
    },

    list: (_call, callback) => {
      if (statusByServiceName.size > listedServicesMax) {
        callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${listedServicesMax} services to list` });
        return;
      }
      const statuses: HealthListResponse['statuses'] = {};
      for (const [serviceName, status] of statusByServiceName) statuses[serviceName] = { status };
      callback(null, { statuses });
    },

    watch: (call) => {
      const serviceName = call.request.service;
      const watcher: Watcher = {
        serviceName,
        call,
        lastSentStatus: undefined,
        isEnded: false,
        waitingStatus: undefined,
        waitingForDrain: false,
      };
      if (isShutDown) {
        endWatch(watcher);
        return;
      }
      if (watchers.size >= watchersMax) {
        call.emit('error', {
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: `more than ${watchersMax} health watchers`,
        });
        return;
      }
      watchers.add(watcher);
      call.on('cancelled', () => watchers.delete(watcher));
      sendStatus(watcher, currentStatus(serviceName) ?? ServingStatus.SERVICE_UNKNOWN);
    },
  };

  return { implementation, setStatus, shutdown };
}

/** Setting SERVICE_UNKNOWN or an unrecognized value is a programmer error, not an operating one. */
function assertSettableStatus(status: ServingStatus): void {
  if (status !== ServingStatus.SERVING && status !== ServingStatus.NOT_SERVING && status !== ServingStatus.UNKNOWN) {
    throw new Error(`health status ${ServingStatus[status] ?? status} cannot be set`);
  }
}
