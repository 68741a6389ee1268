/**
 * Runs one DFSP's SPSP service: its database, the ledger follower (receiver and payment
 * outcomes), the reconciler, and the gRPC server with SpspService and PaymentService.
 */
import type { MikroORM } from '@mikro-orm/core';
import type { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health';
import { PaymentServiceService, SpspServiceService } from '../gen/interclear/spsp/v1/spsp';
import { createLedgerClient } from '../ledger/client';
import { registerCoalescingMetrics, withCallCoalescing } from '../ledger/coalescing';
import type { ClientIdentity } from '../platform/client';
import { createPool } from '../platform/database';
import { createGatewayInterceptor } from '../platform/gateway';
import { acquireInstanceLock } from '../platform/instance-lock';
import type { Logger } from '../platform/logger';
import { createServiceMetrics, observedGauge, startMetricsServer } from '../platform/metrics';
import { createPrincipalResolver } from '../platform/principal';
import { startServer, type RunningServer } from '../platform/server';
import { channelCredentials, serverCredentials, type TlsFiles } from '../platform/tls';
import { contextFromTraceParent, inSpan } from '../platform/tracing';
import { createLedgerAdapter, createQuoterAdapter, createRemoteSpspAdapter } from './adapters';
import type { SpspSettings } from './config';
import { LedgerFollower } from './follower';
import { createPaymentGrpcHandlers, createSpspGrpcHandlers } from './grpc';
import { IncomingPaymentHandler } from './incoming';
import { PaymentNotifier } from './notifier';
import { createSendingService, type SendingService, type SendingTiming } from './payments';
import { migrateSpspDatabase, openSpspOrm, spspInstanceLockKey } from './persistence';
import { RemoteError, type LedgerSummary, type SpspLedger } from './ports';
import { Directory, ReceiverBook } from './receivers';
import { createReceivedPayments } from './received';
import { createReceivingService, type ReceivingService } from './receiving';
import { SpspStore } from './store';

/** How to run an SPSP service. */
export interface SpspConfig {
  settings: SpspSettings;
  /** URL of the service's own database. */
  databaseUrl: string;
  /** Plaintext, principals from the x-principal header (development only). */
  insecure: boolean;
  /** The service's certificate, key and the network's CA (required unless insecure). */
  tls?: TlsFiles;
  /** Principals allowed to call PaymentService (default ["admin"]). */
  admins?: string[];
  /** host:port of a plaintext health-only listener for Kubernetes probes. */
  healthListen?: string;
  /** host:port serving Prometheus /metrics. */
  metricsListen?: string;
  /** Most unary calls one principal may have in flight on this server (default 1024; see platform/gateway.ts). */
  maxCallsPerPrincipal?: number;
  /** Run migrations before serving (default true). */
  migrate?: boolean;
  /** How long to wait for the ledger at start (default 30 s). */
  ledgerWaitMs?: number;
  /** How often overdue payments are reconciled (default 2 s). */
  reconcileIntervalMs?: number;
  timing?: Partial<SendingTiming>;
  /** The service's clock (tests). */
  now?: () => Date;
  /** How long to wait for another process running this SPSP service to go (default 15 s). */
  instanceLockTimeoutMs?: number;
  /**
   * Called if another process takes this service's instance lock while it runs (its lock's
   * connection was lost and another process took the lock); the service has already begun to
   * stop. The command line exits with status 1.
   */
  onInstanceLockLost?: (error: Error) => void;
  logger: Logger;
}

/** A running SPSP service and what tests and tools may look at. */
export interface RunningSpsp {
  address: string;
  ledgerInfo: LedgerSummary;
  receiving: ReceivingService;
  sending: SendingService;
  store: SpspStore;
  follower: LedgerFollower;
  orm: MikroORM<PostgreSqlDriver>;
  server: RunningServer;
  stop(): Promise<void>;
}

async function describeLedger(ledger: SpspLedger, waitMs: number, logger: Logger): Promise<LedgerSummary> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await ledger.describe();
    } catch (error) {
      if (!(error instanceof RemoteError) || error.kind !== 'unavailable' || Date.now() > deadline) throw error;
      if (attempt === 1) logger.info({ err: error }, 'waiting for the ledger');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Starts an SPSP service and resolves once it serves. */
export async function startSpsp(config: SpspConfig): Promise<RunningSpsp> {
  const { settings, logger } = config;
  const now = config.now ?? (() => new Date());
  if (!config.insecure && !config.tls) throw new Error('an SPSP service needs TLS files unless it runs insecure');
  const identity: ClientIdentity = config.tls
    ? { credentials: channelCredentials(config.tls) }
    : { principal: settings.principal };

  const orm = await openSpspOrm(config.databaseUrl);
  const closers: Array<() => Promise<void> | void> = [() => orm.close(true)];
  try {
    if (config.migrate ?? true) await migrateSpspDatabase(orm);
    // One process per SPSP service: two would both fulfil incoming payments and settle outgoing ones.
    const lock = await acquireInstanceLock({
      url: config.databaseUrl,
      key: spspInstanceLockKey,
      service: 'SPSP service',
      timeoutMs: config.instanceLockTimeoutMs ?? 15_000,
      logger,
    });
    closers.push(() => lock.release());
    // Concurrent prepares (Pay) and fulfils (incoming payments) travel together under load.
    const ledgerClient = withCallCoalescing(createLedgerClient(settings.ledgerEndpoint, identity));
    closers.push(() => ledgerClient.close());
    const ledger = createLedgerAdapter(ledgerClient);
    const ledgerInfo = await describeLedger(ledger, config.ledgerWaitMs ?? 30_000, logger);
    const quoter = createQuoterAdapter(settings.quotingEndpoint, identity);
    closers.push(() => quoter.close());
    const remote = createRemoteSpspAdapter(identity);
    closers.push(() => remote.close());

    // The hot path's queries go through pg directly; MikroORM keeps migrations and rare paths.
    const pool = createPool(config.databaseUrl, { size: 8, applicationName: 'interclear-spsp', indexLookups: true });
    closers.push(() => pool.end());
    const store = new SpspStore(orm, pool);
    const receivers = new ReceiverBook(settings.dfsp, ledgerInfo.ilpPrefix, settings.receivers);
    const notifier = new PaymentNotifier();
    const incoming = new IncomingPaymentHandler({
      ledger,
      store,
      receivers,
      secret: settings.secret,
      now,
      logger,
    });
    const follower = new LedgerFollower({
      ledger,
      cursor: { read: () => store.readCursor(), save: (sequence) => store.saveCursor(sequence, now()) },
      logger,
      // Each notification is handled in the trace of the payment that caused it, so that the
      // receiver's fulfil joins the sender's trace.
      handle: (notification, owned) =>
        inSpan(
          `spsp.transfer_${notification.type}`,
          {
            parent: contextFromTraceParent(notification.transfer.traceParent),
            attributes: { 'interclear.transfer_id': notification.transfer.id },
          },
          async () => {
            if (notification.type === 'prepared' && owned.has(notification.transfer.creditAccount)) {
              await incoming.handlePrepared(notification.transfer);
            }
            if (owned.has(notification.transfer.debitAccount)) await sending.applyNotification(notification);
          },
        ),
    });
    // The follower calls into `sending` only once started, below.
    const sending: SendingService = createSendingService({
      dfsp: settings.dfsp,
      ledgerInfo,
      ledger,
      quoter,
      remote,
      directory: new Directory(settings.directory),
      store,
      notifier,
      principal: settings.principal,
      follow: (account) => follower.follow(account),
      now,
      logger,
      // The configuration file's abandonment time; a test's timing overrides it.
      timing:
        settings.paymentAbandonmentMs === undefined
          ? config.timing
          : { abandonedAfterMs: settings.paymentAbandonmentMs, ...config.timing },
    });
    const receiving = createReceivingService({ settings, ledgerInfo, receivers, ledger, now });

    await follower.start();
    closers.push(() => follower.stop());
    for (const receiver of settings.receivers) {
      if (!follower.accounts.has(receiver.account)) {
        logger.warn(
          { receiver: receiver.name, account: receiver.account, principal: settings.principal },
          'the principal owns no such account on the ledger: payments to this receiver cannot arrive',
        );
      }
    }

    const reconcileIntervalMs = config.reconcileIntervalMs ?? 2_000;
    let reconciling = false;
    const reconcileTimer = setInterval(() => {
      if (reconciling) return;
      reconciling = true;
      sending
        .reconcileOverdue()
        .catch((error) => logger.warn({ err: error }, 'reconciling payments failed'))
        .finally(() => (reconciling = false));
    }, reconcileIntervalMs);
    reconcileTimer.unref();
    closers.push(() => clearInterval(reconcileTimer));

    const resolvePrincipal = createPrincipalResolver({ insecure: config.insecure, admins: config.admins ?? ['admin'] });
    const metrics = createServiceMetrics('spsp', { processMetrics: Boolean(config.metricsListen) });
    observedGauge(
      metrics.registry,
      'interclear_instance_lock_held',
      "Whether this process holds the SPSP service's instance lock (0 while it is being taken again)",
      () => (lock.held() ? 1 : 0),
    );
    observedGauge(
      metrics.registry,
      'interclear_spsp_ledger_stream_connected',
      'Whether the ledger stream is live',
      () => (follower.connected ? 1 : 0),
    );
    registerCoalescingMetrics(metrics.registry, () => [
      { ledger: ledgerInfo.ilpPrefix, statistics: ledgerClient.coalescing },
    ]);
    observedGauge(
      metrics.registry,
      'interclear_spsp_payment_waiters',
      'Payments with callers waiting on them',
      () => notifier.size,
    );
    const server = await startServer({
      address: settings.listen,
      services: [
        { definition: SpspServiceService, implementation: createSpspGrpcHandlers(receiving, logger) },
        {
          definition: PaymentServiceService,
          implementation: createPaymentGrpcHandlers(
            sending,
            createReceivedPayments({ store, receivers }),
            { currencyCode: ledgerInfo.currencyCode, scale: ledgerInfo.scale },
            logger,
          ),
        },
      ],
      credentials: config.tls ? serverCredentials(config.tls) : undefined,
      interceptors: [
        createGatewayInterceptor({
          resolvePrincipal,
          logger,
          metrics,
          maxCallsPerPrincipal: config.maxCallsPerPrincipal,
        }),
      ],
      healthAddress: config.healthListen,
    });
    closers.push(() => server.stop(2000));
    const metricsServer = config.metricsListen
      ? await startMetricsServer(config.metricsListen, metrics.registry)
      : undefined;
    if (metricsServer) closers.push(() => metricsServer.stop());

    // Serving means the ledger stream is live: without it no payment can be received or settled.
    const readiness = () => {
      const status = follower.connected
        ? HealthCheckResponse_ServingStatus.SERVING
        : HealthCheckResponse_ServingStatus.NOT_SERVING;
      server.health.setStatus('', status);
      server.health.setStatus('interclear.spsp.v1.SpspService', status);
      server.health.setStatus('interclear.spsp.v1.PaymentService', status);
    };
    readiness();
    const readinessTimer = setInterval(readiness, 1000);
    readinessTimer.unref();
    closers.push(() => clearInterval(readinessTimer));

    logger.info(
      { address: server.address, ledger: ledgerInfo.ilpPrefix, receivers: settings.receivers.length },
      'SPSP service serving',
    );
    let stopping: Promise<void> | undefined;
    const stop = () => (stopping ??= closeAll(closers));
    lock.whenLost((error) => {
      void stop();
      config.onInstanceLockLost?.(error);
    });
    return {
      address: server.address,
      ledgerInfo,
      receiving,
      sending,
      store,
      follower,
      orm,
      server,
      stop,
    };
  } catch (error) {
    await closeAll(closers);
    throw error;
  }
}

/** Runs the closers in reverse order of opening, each once, ignoring their failures. */
async function closeAll(closers: Array<() => Promise<void> | void>): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch {
      // Stopping is best effort: one part failing to stop must not keep the others running.
    }
  }
}
