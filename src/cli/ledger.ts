/** `interclear ledger` (run a ledger) and `interclear migrate` (bring its database up to date). */
import type { Command } from 'commander';
import { ConfigError, environment, parseDuration, parseInteger, parseListenAddress } from '../platform/config';
import { createLogger } from '../platform/logger';
import { isValidIlpPrefix } from '../ilp/address';
import { migrateLedgerDatabase, openLedgerOrm } from '../ledger/persistence';
import { startLedger } from '../ledger/server';
import { initTracing, shutdownTracing } from '../platform/tracing';
import { resolveDatabase, startOnDatabase, stopOnSignals } from './runtime';
import { serverSettingsFrom, withServerOptions } from './security';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerLedgerCommands(program: Command): void {
  withServerOptions(program.command('ledger'), 'ledger')
    .description('run an ILP ledger (the central clearing ledger or a DFSP ledger adapter)')
    .option('--listen <host:port>', 'address to serve gRPC on', environment('LISTEN') ?? '127.0.0.1:7001')
    .option('--ilp-prefix <prefix>', 'ILP address prefix of the ledger, ending with "."', environment('ILP_PREFIX'))
    .option('--currency <code>', 'currency code of the ledger asset, e.g. USD', environment('CURRENCY'))
    .option('--scale <n>', 'decimal places of the minor unit, e.g. 2', environment('SCALE'))
    .option('--precision <n>', 'most decimal digits in an amount (at most 18)', environment('PRECISION') ?? '18')
    .option('--max-hold-time <duration>', 'longest a transfer may stay prepared', environment('MAX_HOLD_TIME') ?? '60s')
    .option('--connector <account>', 'account of a recommended connector (repeatable)', collect, [])
    .option('--admin <principal>', 'principal with administrator rights (repeatable; default admin)', collect)
    .action(async (options) => {
      const logger = createLogger('ledger');
      const prefix = required('--ilp-prefix', options.ilpPrefix);
      if (!isValidIlpPrefix(prefix)) {
        throw new ConfigError(
          '--ilp-prefix',
          `must be an ILP address prefix ending with ".", like "private.dfsp-a.", got "${prefix}"`,
        );
      }
      const currency = required('--currency', options.currency);
      if (!/^[A-Z0-9]{3,12}$/.test(currency))
        throw new ConfigError('--currency', `must be a code like USD, got "${currency}"`);
      const scale = parseInteger('--scale', required('--scale', options.scale), 0, 18);
      const precision = parseInteger('--precision', options.precision, 1, 18);
      const server = serverSettingsFrom(options, logger);
      await initTracing({ serviceName: `ledger ${prefix}` });
      const database = await resolveDatabase({
        databaseUrl: options.databaseUrl,
        dataDir: options.dataDir,
        databaseName: 'interclear_ledger',
        logger,
      });
      const ledger = await startOnDatabase(database, logger, () =>
        startLedger({
          listen: parseListenAddress('--listen', options.listen),
          databaseUrl: database.url,
          ilpPrefix: prefix,
          currencyCode: currency,
          scale,
          precision,
          maxHoldMs: parseDuration('--max-hold-time', options.maxHoldTime),
          connectors: options.connector,
          ...server,
          logger,
        }),
      );
      process.stderr.write(`ledger ${prefix} (${currency}, scale ${scale}) serving on ${ledger.address}\n`);
      stopOnSignals(async () => {
        await ledger.stop();
        await shutdownTracing();
        await database.embedded?.stop();
      }, logger);
    });

  program
    .command('migrate')
    .description("apply a service's database migrations and exit (e.g. as a Kubernetes pre-install job)")
    .option('--kind <kind>', 'whose database: ledger, connector or spsp', environment('KIND') ?? 'ledger')
    .option('--database-url <url>', 'PostgreSQL URL of the ledger database (or DATABASE_URL)')
    .option('--data-dir <dir>', 'embedded PostgreSQL data directory (when no URL is given)', environment('DATA_DIR'))
    .action(async (options) => {
      const logger = createLogger('migrate');
      const migrator = migrators[options.kind as string];
      if (!migrator) throw new ConfigError('--kind', `must be one of ${Object.keys(migrators).join(', ')}`);
      const database = await resolveDatabase({
        databaseUrl: options.databaseUrl,
        dataDir: options.dataDir,
        databaseName: `interclear_${options.kind}`,
        logger,
      });
      try {
        await migrator(database.url);
        process.stderr.write(`${options.kind} database is up to date\n`);
      } finally {
        await database.embedded?.stop();
      }
    });
}

function required(flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new ConfigError(flag, 'is required');
  return value;
}

/** How each kind of service brings its database up to date. */
const migrators: Record<string, (databaseUrl: string) => Promise<void>> = {
  ledger: async (databaseUrl) => {
    const orm = await openLedgerOrm(databaseUrl);
    try {
      await migrateLedgerDatabase(orm);
    } finally {
      await orm.close(true);
    }
  },
};

/** Lets other services register their migrations for `interclear migrate --kind`. */
export function registerMigrator(kind: string, migrate: (databaseUrl: string) => Promise<void>): void {
  migrators[kind] = migrate;
}
