/**
 * Runs one connector: its database (migrations, ownership check, the instance lock), a gateway
 * per ledger, the connector itself, and the gRPC server with ConnectorService and
 * QuotingService behind the gateway interceptor (authentication, policy, RPC metrics), health
 * and reflection. Health is SERVING while every ledger stream is connected.
 */
import { Gauge, type Registry } from 'prom-client';
import { HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health';
import { ConnectorServiceService } from '../gen/interclear/connector/v1/connector';
import { QuotingServiceService } from '../gen/interclear/quoting/v1/quoting';
import type { ClientIdentity } from '../platform/client';
import { createPool } from '../platform/database';
import { acquireInstanceLock, type InstanceLock } from '../platform/instance-lock';
import { createGatewayInterceptor } from '../platform/gateway';
import type { Logger } from '../platform/logger';
import { registerCoalescingMetrics } from '../ledger/coalescing';
import { createServiceMetrics, observedGauge, startMetricsServer } from '../platform/metrics';
import { createPrincipalResolver } from '../platform/principal';
import { startServer, type RunningServer } from '../platform/server';
import { channelCredentials, serverCredentials, type TlsFiles } from '../platform/tls';
import { createGrpcNextHopQuoter } from './client';
import { createConnectorGrpcHandlers, createQuotingGrpcHandlers } from './grpc';
import { createLedgerGateway, type LedgerGateway } from './ledgers';
import type { ConnectorSettings } from './model';
import { connectorInstanceLockKey, migrateConnectorDatabase, openConnectorOrm } from './persistence';
import { createConnector, type Connector, type ConnectorTuning } from './service';
import { createPaymentStore, type PaymentStore } from './store';

/** How to run a connector. */
export interface ConnectorRunOptions {
  settings: ConnectorSettings;
  /** URL of the connector's own database. */
  databaseUrl: string;
  /**
   * Plaintext development mode: callers are named by the x-principal header, and the connector
   * names itself to ledgers and next connectors by `settings.principal` the same way.
   */
  insecure: boolean;
  /** The connector's certificate, key and the network's CA: for its server and as its client identity. */
  tls?: TlsFiles;
  /** Principals allowed the operator's RPCs (GetStatus); default ["admin"]. */
  admins?: string[];
  /** Overrides settings.listen (tests: port 0). */
  listen?: string;
  /** host:port of a plaintext health-only listener for Kubernetes probes. */
  healthListen?: string;
  /** host:port serving Prometheus /metrics. */
  metricsListen?: string;
  /** Most unary calls one principal may have in flight on this server (default 1024; see platform/gateway.ts). */
  maxCallsPerPrincipal?: number;
  logger: Logger;
  /** Run migrations before serving (default true). */
  migrate?: boolean;
  tuning?: Partial<ConnectorTuning>;
  /** How long to wait for another process running this connector to go (default 15 s). */
  instanceLockTimeoutMs?: number;
  /**
   * Called if another process takes this connector's instance lock while it runs (its lock's
   * connection was lost and the other kept the lock past the timeout); the connector has
   * already begun to stop. The command line exits with status 1.
   */
  onInstanceLockLost?: (error: Error) => void;
  /** Test hook: never pass fulfillments back (see docs/CONNECTOR.md). */
  holdPassBacks?: boolean;
}

/** A running connector. */
export interface RunningConnector {
  address: string;
  connector: Connector;
  server: RunningServer;
  stop(): Promise<void>;
}

const servedNames = ['', 'interclear.connector.v1.ConnectorService', 'interclear.quoting.v1.QuotingService'];

/** Starts a connector and resolves once it serves (its ledger streams connect in the background). */
export async function startConnector(options: ConnectorRunOptions): Promise<RunningConnector> {
  const { settings, logger } = options;
  if (!options.insecure && !options.tls) throw new Error('a connector needs TLS files unless it runs insecure');
  const identity: ClientIdentity = options.tls
    ? { credentials: channelCredentials(options.tls) }
    : { principal: settings.principal };
  const orm = await openConnectorOrm(options.databaseUrl);
  try {
    if (options.migrate ?? true) await migrateConnectorDatabase(orm);
  } finally {
    await orm.close(true);
  }
  const pool = createPool(options.databaseUrl, {
    size: 8,
    applicationName: 'interclear-connector',
    indexLookups: true,
  });
  const store = createPaymentStore(pool);
  let lock: InstanceLock;
  try {
    await store.claimDatabase(settings.name);
    lock = await acquireInstanceLock({
      url: options.databaseUrl,
      key: connectorInstanceLockKey,
      service: 'connector',
      timeoutMs: options.instanceLockTimeoutMs ?? 15_000,
      logger,
    });
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  const gateways = new Map<string, LedgerGateway>(
    settings.ledgers.map((ledger) => [ledger.prefix, createLedgerGateway(ledger, identity)]),
  );
  const nextHop = createGrpcNextHopQuoter(identity);
  let server: RunningServer | undefined;
  const setHealth = (ready: boolean) => {
    const status = ready ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING;
    for (const name of servedNames) server?.health.setStatus(name, status);
    logger.info(
      { ready },
      ready ? 'every ledger stream is connected: serving' : 'a ledger stream is down: not serving',
    );
  };
  const connector = createConnector({
    settings,
    store,
    gateways,
    nextHop,
    logger,
    tuning: options.tuning,
    holdPassBacks: options.holdPassBacks,
    onReadinessChange: setHealth,
  });
  const resolvePrincipal = createPrincipalResolver({ insecure: options.insecure, admins: options.admins ?? ['admin'] });
  const metrics = createServiceMetrics('connector', { processMetrics: Boolean(options.metricsListen) });
  registerConnectorMetrics(metrics.registry, connector, store);
  observedGauge(
    metrics.registry,
    'interclear_instance_lock_held',
    "Whether this process holds the connector's instance lock (0 while it is being taken again)",
    () => (lock.held() ? 1 : 0),
  );
  registerCoalescingMetrics(metrics.registry, () =>
    [...gateways.values()].map((gateway) => ({ ledger: gateway.endpoint.prefix, statistics: gateway.coalescing })),
  );
  let metricsServer: { address: string; stop(): Promise<void> } | undefined;
  try {
    server = await startServer({
      address: options.listen ?? settings.listen,
      services: [
        { definition: ConnectorServiceService, implementation: createConnectorGrpcHandlers(connector, logger) },
        { definition: QuotingServiceService, implementation: createQuotingGrpcHandlers(connector, logger) },
      ],
      credentials: options.tls ? serverCredentials(options.tls) : undefined,
      interceptors: [
        createGatewayInterceptor({
          resolvePrincipal,
          logger,
          metrics,
          maxCallsPerPrincipal: options.maxCallsPerPrincipal,
        }),
      ],
      healthAddress: options.healthListen,
    });
    for (const name of servedNames) server.health.setStatus(name, HealthCheckResponse_ServingStatus.NOT_SERVING);
    metricsServer = options.metricsListen
      ? await startMetricsServer(options.metricsListen, metrics.registry)
      : undefined;
    await connector.start();
  } catch (error) {
    await server?.stop(0);
    await metricsServer?.stop();
    await pool.end().catch(() => undefined);
    await lock.release();
    throw error;
  }
  if (options.holdPassBacks) logger.warn('test hook: pass-backs are held; never use in production');
  logger.info(
    { address: server.address, metrics: metricsServer?.address, name: settings.name, ilpAddress: settings.ilpAddress },
    'connector serving',
  );
  const running = server;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await connector.stop();
      await running.stop(2000);
      await metricsServer?.stop();
      nextHop.close();
      for (const gateway of gateways.values()) gateway.close();
      await pool.end().catch(() => undefined);
      await lock.release();
    })());
  lock.whenLost((error) => {
    // Another process acts as this connector now: stop forwarding and passing back at once.
    void stop().catch((cause: unknown) => logger.error({ err: cause }, 'error while stopping'));
    options.onInstanceLockLost?.(error);
  });
  return { address: running.address, connector, server: running, stop };
}

/** The connector's own metrics, read when scraped. */
function registerConnectorMetrics(registry: Registry, connector: Connector, store: PaymentStore): void {
  new Gauge({
    name: 'interclear_connector_ledger_stream_connected',
    help: 'Whether the notification stream of each ledger is live',
    labelNames: ['ledger'],
    registers: [registry],
    collect() {
      for (const ledger of connector.followerStates()) this.set({ ledger: ledger.prefix }, ledger.connected ? 1 : 0);
    },
  });
  // One read of the store per scrape feeds the gauges below.
  let figures: ReturnType<PaymentStore['status']> | undefined;
  const read = () => (figures ??= store.status().finally(() => setTimeout(() => (figures = undefined), 1000).unref()));
  new Gauge({
    name: 'interclear_connector_payments',
    help: 'Payments not final, by state; "lost" counts pass-backs that failed for good (money lost)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const { counts } = await read();
      for (const [state, count] of Object.entries(counts)) this.set({ state }, Number(count));
    },
  });
  new Gauge({
    name: 'interclear_connector_pass_back_retries',
    help: 'Pass-back attempts that failed and were retried, since the database was created',
    registers: [registry],
    async collect() {
      this.set(Number((await read()).passBackRetries));
    },
  });
  new Gauge({
    name: 'interclear_connector_in_flight_outgoing_amount',
    help: 'Sum of outgoing transfers not final, by ledger, minor units',
    labelNames: ['ledger'],
    registers: [registry],
    async collect() {
      const { inFlight } = await read();
      for (const prefix of connector.ledgers.keys())
        this.set({ ledger: prefix }, Number(inFlight.get(prefix)?.outgoing ?? 0n));
    },
  });
}
