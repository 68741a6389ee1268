/**
 * Runs one ledger: database migrations, the command processor, the expiry sweeper, the event
 * hub and the gRPC server. Several processes may run the same ledger on one database.
 */
import type { MikroORM } from '@mikro-orm/core';
import type { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type pg from 'pg';
import type * as grpc from '@grpc/grpc-js';
import { LedgerServiceService } from '../gen/interclear/ledger/v1/ledger';
import { HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health';
import { createPool } from '../platform/database';
import type { Logger } from '../platform/logger';
import { createPrincipalResolver, type PrincipalResolver } from '../platform/principal';
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
  /** Plaintext, principal from the x-principal header. */
  insecure: boolean;
  /** TLS credentials when not insecure. */
  credentials?: grpc.ServerCredentials;
  /** Resolves the caller's principal; defaults to the insecure header resolver. */
  resolvePrincipal?: PrincipalResolver;
  /** Milliseconds added to every clock of the ledger (tests of expiry). */
  clockOffsetMs?: () => number;
  /** Run migrations before serving (default true). */
  migrate?: boolean;
  /** Connections for the hot path. */
  poolSize?: number;
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
  const orm = await openLedgerOrm(config.databaseUrl);
  if (config.migrate ?? true) await migrateLedgerDatabase(orm);
  const pool = createPool(config.databaseUrl, { size: config.poolSize ?? 8, applicationName: 'interclear-ledger' });
  const clockOffsetMs = config.clockOffsetMs ?? (() => 0);
  const processor = new CommandProcessor(pool, {
    clockOffsetMs,
    onInternalError: (error) => logger.error({ err: error }, 'ledger batch failed'),
  });
  const hub = new EventHub(pool, config.databaseUrl, {
    onError: (error) => logger.warn({ err: error }, 'notification listener failed; reconnecting'),
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
  const resolvePrincipal =
    config.resolvePrincipal ??
    createPrincipalResolver({ insecure: config.insecure, admins: config.admins ?? ['admin'] });
  const server = await startServer({
    address: config.listen,
    services: [
      {
        definition: LedgerServiceService,
        implementation: createLedgerGrpcHandlers(service, resolvePrincipal, logger),
      },
    ],
    credentials: config.credentials,
  });
  server.health.setStatus('', HealthCheckResponse_ServingStatus.SERVING);
  server.health.setStatus('interclear.ledger.v1.LedgerService', HealthCheckResponse_ServingStatus.SERVING);
  logger.info({ address: server.address, ilpPrefix: info.ilpPrefix, currency: info.currencyCode }, 'ledger serving');
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
        await sweeper.stop();
        await hub.stop();
        await server.stop(2000);
        await pool.end().catch(() => undefined);
        await orm.close(true).catch(() => undefined);
      })()),
  };
}
