/**
 * Runs one ledger: database migrations, the command processor, the expiry sweeper, the event
 * hub and the gRPC server. Several processes may run the same ledger on one database.
 */
import type { MikroORM } from '@mikro-orm/core';
import type { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { LedgerServiceService } from '../gen/interclear/ledger/v1/ledger';
import { HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health';
import { createPool } from '../platform/database';
import type { Logger } from '../platform/logger';
import { createGatewayInterceptor } from '../platform/gateway';
import { createServiceMetrics, observedGauge, startMetricsServer } from '../platform/metrics';
import { createPrincipalResolver } from '../platform/principal';
import { serverCredentials, type TlsFiles } from '../platform/tls';
import { startServer, type RunningServer } from '../platform/server';
import { createLedgerGrpcHandlers } from './grpc';
import type { LedgerInfo } from './model';
import { EventHub } from './notifications';
import { migrateLedgerDatabase, openLedgerOrm } from './persistence';
import { CommandProcessor } from './processor';
import { createLedgerService, type LedgerService } from './service';
import { ExpirySweeper } from './sweeper';

/** How to run a ledger. */
export interface LedgerConfig {
  /** host:port to listen on (port 0: any free port). */
  listen: string;
  /** URL of the ledger's own database. */
  databaseUrl: string;
  ilpPrefix: string;
  currencyCode: string;
  scale: number;
  /** Decimal digits an amount may have (at most 18: amounts are PostgreSQL int8). */
  precision?: number;
  maxHoldMs?: number;
  connectors?: string[];
  /** Principals with administrator rights. */
  admins?: string[];
  /** Plaintext, principal from the x-principal header (development only). */
  insecure: boolean;
  /** The ledger's certificate, key and the network's CA (required unless insecure). */
  tls?: TlsFiles;
  /** host:port of a plaintext grpc.health.v1-only listener for Kubernetes probes. */
  healthListen?: string;
  /** host:port serving Prometheus /metrics. */
  metricsListen?: string;
  /** Most unary calls one principal may have in flight on this server (default 1024; see platform/gateway.ts). */
  maxCallsPerPrincipal?: number;
  /** Milliseconds added to every clock of the ledger (tests of expiry). */
  clockOffsetMs?: () => number;
  /** Run migrations before serving (default true). */
  migrate?: boolean;
  /** Connections for the hot path. */
  poolSize?: number;
  /** Group-commit tuning (batch size, batches in flight). */
  batching?: { maxBatchSize?: number; maxConcurrentBatches?: number };
  sweepIntervalMs?: number;
  logger: Logger;
}

/** A running ledger and what tests and tools may look at. */
export interface RunningLedger {
  address: string;
  info: LedgerInfo;
  service: LedgerService;
  processor: CommandProcessor;
  sweeper: ExpirySweeper;
  hub: EventHub;
  pool: pg.Pool;
  orm: MikroORM<PostgreSqlDriver>;
  server: RunningServer;
  stop(): Promise<void>;
}

/** Starts a ledger and resolves once it serves. */
export async function startLedger(config: LedgerConfig): Promise<RunningLedger> {
  const { logger } = config;
  const info: LedgerInfo = {
    ilpPrefix: config.ilpPrefix,
    currencyCode: config.currencyCode,
    scale: config.scale,
    precision: config.precision ?? 18,
    connectors: config.connectors ?? [],
    maxHoldMs: config.maxHoldMs ?? 60_000,
  };
  if (!config.insecure && !config.tls) throw new Error('a ledger needs TLS files unless it runs insecure');
  // Before anything starts: a wrong certificate file fails here, leaving nothing running.
  const credentials = config.tls ? serverCredentials(config.tls) : undefined;
  const orm = await openLedgerOrm(config.databaseUrl);
  try {
    if (config.migrate ?? true) await migrateLedgerDatabase(orm);
  } catch (error) {
    await orm.close(true).catch(() => undefined);
    throw error;
  }
  const pool = createPool(config.databaseUrl, {
    size: config.poolSize ?? 8,
    applicationName: 'interclear-ledger',
    indexLookups: true,
  });
  const clockOffsetMs = config.clockOffsetMs ?? (() => 0);
  const hub = new EventHub(pool, config.databaseUrl, {
    onError: (error) => logger.warn({ err: error }, 'notification listener failed; reconnecting'),
    localCommitsInFlight: () => processor.batchesRunning > 0,
  });
  const processor = new CommandProcessor(pool, {
    ...config.batching,
    clockOffsetMs,
    onInternalError: (error) => logger.error({ err: error }, 'ledger batch failed'),
    onCommitted: (events) => hub.publishCommitted(events),
  });
  await hub.start();
  const sweeper = new ExpirySweeper(pool, {
    clockOffsetMs,
    intervalMs: config.sweepIntervalMs,
    onError: (error) => logger.error({ err: error }, 'expiry sweep failed'),
  });
  sweeper.start();
  const service = createLedgerService({
    info,
    pool,
    orm,
    processor,
    hub,
    now: () => new Date(Date.now() + clockOffsetMs()),
  });
  const resolvePrincipal = createPrincipalResolver({ insecure: config.insecure, admins: config.admins ?? ['admin'] });
  const metrics = createServiceMetrics('ledger', { processMetrics: Boolean(config.metricsListen) });
  registerLedgerMetrics(metrics.registry, { pool, processor, sweeper, hub });
  // A ledger that cannot listen (address taken) stops what it started and fails, rather than
  // living on half-started, its sweeper and notification listener keeping the process up.
  const failStart = async (error: unknown): Promise<never> => {
    await sweeper.stop();
    await hub.stop();
    await pool.end().catch(() => undefined);
    await orm.close(true).catch(() => undefined);
    throw error;
  };
  const server = await startServer({
    address: config.listen,
    services: [
      {
        definition: LedgerServiceService,
        implementation: createLedgerGrpcHandlers(service, resolvePrincipal, logger),
      },
    ],
    credentials,
    interceptors: [
      createGatewayInterceptor({
        resolvePrincipal,
        logger,
        metrics,
        maxCallsPerPrincipal: config.maxCallsPerPrincipal,
      }),
    ],
    healthAddress: config.healthListen,
  }).catch(failStart);
  const metricsServer = config.metricsListen
    ? await startMetricsServer(config.metricsListen, metrics.registry).catch((error) =>
        server.stop(0).then(() => failStart(error)),
      )
    : undefined;
  // Readiness: serving while the database answers and the notification listener is connected.
  const readiness = async () => {
    const databaseUp = await pool.query('select 1').then(
      () => true,
      () => false,
    );
    const status =
      databaseUp && hub.listening
        ? HealthCheckResponse_ServingStatus.SERVING
        : HealthCheckResponse_ServingStatus.NOT_SERVING;
    server.health.setStatus('', status);
    server.health.setStatus('interclear.ledger.v1.LedgerService', status);
  };
  await readiness();
  const readinessTimer = setInterval(() => void readiness(), 2000);
  readinessTimer.unref();
  logger.info(
    {
      address: server.address,
      metrics: metricsServer?.address,
      ilpPrefix: info.ilpPrefix,
      currency: info.currencyCode,
    },
    'ledger serving',
  );
  let stopping: Promise<void> | undefined;
  return {
    address: server.address,
    info,
    service,
    processor,
    sweeper,
    hub,
    pool,
    orm,
    server,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(readinessTimer);
        await sweeper.stop();
        await hub.stop();
        await server.stop(2000);
        await metricsServer?.stop();
        await pool.end().catch(() => undefined);
        await orm.close(true).catch(() => undefined);
      })()),
  };
}

/** The ledger's own metrics, read when scraped. */
function registerLedgerMetrics(
  registry: Registry,
  parts: { pool: pg.Pool; processor: CommandProcessor; sweeper: ExpirySweeper; hub: EventHub },
): void {
  // Three gauges read the holds, and a scrape collects them at once: they share one query.
  let holdsRead: Promise<{ count: bigint; amount: bigint }> | undefined;
  const holds = () =>
    (holdsRead ??= parts.pool
      .query<{ count: bigint; amount: bigint }>(
        "select count(*) as count, coalesce(sum(amount), 0) as amount from transfers where state = 'prepared'",
      )
      .then((result) => result.rows[0])
      .finally(() => (holdsRead = undefined)));
  observedGauge(registry, 'interclear_ledger_holds_outstanding', 'Prepared transfers holding funds', async () =>
    Number((await holds()).count),
  );
  observedGauge(
    registry,
    'interclear_ledger_held_amount',
    'Sum of amounts held by prepared transfers, minor units',
    async () => Number((await holds()).amount),
  );
  observedGauge(
    registry,
    'interclear_ledger_subscribers',
    'Open Subscribe streams on this replica',
    () => parts.hub.subscribers,
  );
  observedGauge(
    registry,
    'interclear_ledger_sweeper_lag_seconds',
    'How late the sweeper found the oldest expired transfer',
    () => parts.sweeper.statistics.lagMs / 1000,
  );
  observedGauge(
    registry,
    'interclear_ledger_transfers_expired',
    'Transfers expired by this replica since start',
    () => parts.sweeper.statistics.expired,
  );
  observedGauge(
    registry,
    'interclear_ledger_batches',
    'Group-commit batches since start',
    () => parts.processor.statistics.batches,
  );
  observedGauge(
    registry,
    'interclear_ledger_commands',
    'Commands executed in batches since start',
    () => parts.processor.statistics.commands,
  );
  observedGauge(
    registry,
    'interclear_ledger_batch_retries',
    'Batches rerun after a lost race since start',
    () => parts.processor.statistics.retries,
  );
  observedGauge(
    registry,
    'interclear_ledger_queue_length',
    'Commands waiting for a batch',
    () => parts.processor.queueLength,
  );
  // Exact for the whole ledger (every replica's transfers), without reading the transfers table
  // on every scrape (seconds at tens of millions of rows): prepared is counted through the
  // expiry sweeper's partial index; executed and rejected are the outbox's transfer_executed and
  // transfer_rejected events (one per transfer reaching that state), counted once and then only
  // the events appended since the previous scrape. The first scrape after a start reads the
  // outbox once. Scrapes run one at a time, so no range is counted twice.
  const finished = { through: 0n, executed: 0, rejected: 0 };
  let counting: Promise<void> = Promise.resolve();
  const countFinished = async () => {
    const head = (await parts.pool.query<{ sequence: bigint }>('select sequence from ledger_head')).rows[0].sequence;
    if (head <= finished.through) return;
    const { rows } = await parts.pool.query<{ type: string; count: bigint }>({
      name: 'ledger-metrics-finished-transfers',
      text:
        'select type, count(*) as count from events where sequence > $1 and sequence <= $2 ' +
        "and type in ('transfer_executed', 'transfer_rejected') group by type",
      values: [finished.through, head],
    });
    for (const row of rows) {
      if (row.type === 'transfer_executed') finished.executed += Number(row.count);
      else finished.rejected += Number(row.count);
    }
    finished.through = head;
  };
  new Gauge({
    name: 'interclear_ledger_transfers',
    help: 'Transfers by state (the whole ledger)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      counting = counting.catch(() => undefined).then(countFinished);
      const [open] = await Promise.all([holds(), counting]);
      this.set({ state: 'prepared' }, Number(open.count));
      this.set({ state: 'executed' }, finished.executed);
      this.set({ state: 'rejected' }, finished.rejected);
    },
  });
}
