/**
 * What every long-running command shares: where its database is (a URL, or an embedded
 * PostgreSQL in a data directory), and a clean stop on SIGINT/SIGTERM.
 */
import path from 'node:path';
import { ensureDatabase, startEmbeddedDatabase, withDatabase, type EmbeddedDatabase } from '../platform/database';
import { environment } from '../platform/config';
import type { Logger } from '../platform/logger';
import { shutdownTracing } from '../platform/tracing';

/** Where a service's database lives. */
export interface DatabaseChoice {
  /** The database URL the service uses. */
  url: string;
  /** The embedded server started for it, stopped with the service. */
  embedded?: EmbeddedDatabase;
}

/**
 * The database for a service: `databaseUrl` (or DATABASE_URL) as given, or database
 * `databaseName` on an embedded PostgreSQL kept in `dataDir`.
 */
export async function resolveDatabase(options: {
  databaseUrl?: string;
  dataDir?: string;
  databaseName: string;
  logger: Logger;
}): Promise<DatabaseChoice> {
  const url = options.databaseUrl ?? environment('DATABASE_URL') ?? process.env.DATABASE_URL;
  if (url) return { url };
  const dataDir = path.resolve(options.dataDir ?? path.join('.interclear', 'data'));
  options.logger.info({ dataDir }, 'starting embedded PostgreSQL');
  const embedded = await startEmbeddedDatabase({ dataDir, log: (line) => options.logger.debug({ postgres: line }) });
  const database = { url: withDatabase(embedded.url, options.databaseName), embedded };
  await startOnDatabase(database, options.logger, () => ensureDatabase(embedded.url, options.databaseName));
  return database;
}

/** The longest a failed start waits for its embedded PostgreSQL to stop (it takes well under a second). */
const embeddedStopTimeoutMs = 15_000;

/**
 * Runs `start` (a service starting on `database`). Should it fail, the embedded PostgreSQL started
 * for the service is stopped before the failure is passed on, so that the command exits leaving
 * no server running and its data directory unlocked (no postmaster.pid), ready for the next start.
 */
export async function startOnDatabase<T>(
  database: DatabaseChoice,
  logger: Logger,
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (database.embedded) await stopAfterFailedStart(database.embedded, logger);
    throw error;
  }
}

async function stopAfterFailedStart(embedded: EmbeddedDatabase, logger: Logger): Promise<void> {
  logger.info({ dataDir: embedded.dataDir }, 'start failed: stopping the embedded PostgreSQL');
  let timer: NodeJS.Timeout | undefined;
  // A server that had already died would never report its exit: the failure must not wait forever.
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      logger.warn({ dataDir: embedded.dataDir, timeoutMs: embeddedStopTimeoutMs }, 'embedded PostgreSQL did not stop');
      resolve();
    }, embeddedStopTimeoutMs);
  });
  const stopped = embedded
    .stop()
    .catch((error: unknown) => logger.warn({ err: error }, 'could not stop the embedded PostgreSQL'));
  await Promise.race([stopped, timeout]);
  clearTimeout(timer);
}

/** The services of this process, in the order they started, each with how it stops. */
const runningServices: Array<{ stop: () => Promise<void>; logger: Logger }> = [];
let stopping = false;
let finalExitCode = 0;
/** What a stop waits for before it begins (e.g. `interclear host`'s services still starting). */
const beforeStopping: Array<() => Promise<unknown>> = [];

/** Makes a stop on SIGINT/SIGTERM wait for `pending` first (a service that is starting). */
export function waitBeforeStopping(pending: () => Promise<unknown>): void {
  beforeStopping.push(pending);
}

/** Whether this process has begun to stop its services. */
export function servicesStopping(): boolean {
  return stopping;
}

/** Stops every service of this process, the last started first, then exits with `exitCode`. */
function stopAllAndExit(reason: Record<string, unknown>, exitCode: number): void {
  // A failure during a stop already under way still ends the process with its status.
  finalExitCode = Math.max(finalExitCode, exitCode);
  if (stopping) return;
  stopping = true;
  void (async () => {
    for (const pending of beforeStopping) await pending().catch(() => undefined);
    for (const service of [...runningServices].reverse()) {
      service.logger.info(reason, 'stopping');
      await service.stop().catch((error: unknown) => service.logger.error({ err: error }, 'error while stopping'));
      service.logger.flush();
    }
    // The spans of every service, when several shared the provider (each left it running).
    await shutdownTracing({ last: true });
    process.exit(finalExitCode);
  })();
}

/**
 * Runs `stop` once on SIGINT or SIGTERM, then exits. Several services in one process
 * (`interclear host`) stop one after the other, the last started first (a DFSP's connector and
 * SPSP service before the ledger they call), and the process exits once all have stopped.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  runningServices.push({ stop, logger });
  if (runningServices.length > 1) return;
  process.on('SIGINT', () => stopAllAndExit({ signal: 'SIGINT' }, 0));
  process.on('SIGTERM', () => stopAllAndExit({ signal: 'SIGTERM' }, 0));
}

/**
 * A service of this process cannot go on (e.g. another process took its instance lock): every
 * service stops as on a signal and the process exits with status 1, so that its supervisor
 * (Kubernetes, systemd, `interclear network`) sees the failure.
 */
export function stopForFailure(error: Error, logger: Logger): void {
  logger.fatal({ err: error }, 'cannot go on: stopping');
  logger.flush();
  stopAllAndExit({ reason: error.message }, 1);
}
