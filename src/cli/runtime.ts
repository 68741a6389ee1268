/**
 * What every long-running command shares: where its database is (a URL, or an embedded
 * PostgreSQL in a data directory), and a clean stop on SIGINT/SIGTERM.
 */
import path from 'node:path';
import { ensureDatabase, startEmbeddedDatabase, withDatabase, type EmbeddedDatabase } from '../platform/database';
import { environment } from '../platform/config';
import type { Logger } from '../platform/logger';

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
  await ensureDatabase(embedded.url, options.databaseName);
  return { url: withDatabase(embedded.url, options.databaseName), embedded };
}

/** Runs `stop` once on SIGINT or SIGTERM, then exits. */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    stop()
      .catch((error) => logger.error({ err: error }, 'error while stopping'))
      .finally(() => {
        logger.flush();
        process.exit(0);
      });
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
