/**
 * `interclear connector --config FILE.json`: runs an ILP connector; and its operator commands,
 * `interclear connector status|routes|rates|quote`, against a running connector.
 */
import type { Command } from 'commander';
import { createConnectorClient, createQuotingClient, durationFromMs } from '../connector/client';
import { loadConnectorConfig } from '../connector/config';
import { migrateConnectorDatabase, openConnectorOrm } from '../connector/persistence';
import { startConnector } from '../connector/server';
import { ConfigError, environment, parseDuration, parseListenAddress, parseAmount } from '../platform/config';
import { createLogger } from '../platform/logger';
import { initTracing, shutdownTracing } from '../platform/tracing';
import { registerMigrator } from './ledger';
import { withCall } from './failures';
import { resolveTarget, withManifestOption } from './targets';
import { printJson } from './output';
import { resolveDatabase, startOnDatabase, stopForFailure, stopOnSignals } from './runtime';
import { serverSettingsFrom, withServerOptions } from './security';

/** Environment variable of the test hook that holds every pass-back (see docs/CONNECTOR.md). */
export const holdPassBacksVariable = 'INTERCLEAR_TEST_HOLD_PASSBACK';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const connectorTarget = (address: string) => ({ service: 'the connector', address, flag: '--connector' });

export function registerConnectorCommands(program: Command): void {
  registerMigrator('connector', async (databaseUrl) => {
    const orm = await openConnectorOrm(databaseUrl);
    try {
      await migrateConnectorDatabase(orm);
    } finally {
      await orm.close(true);
    }
  });

  const connector = withServerOptions(program.command('connector'), 'connector')
    .description('run an ILP connector between ledgers (subcommands: status, routes, rates, quote)')
    .option('--config <file>', 'connector configuration (JSON), see docs/CONNECTOR.md', environment('CONFIG'))
    .option('--listen <host:port>', 'address to serve gRPC on (overrides "listen" of the config file)')
    .option(
      '--admin <principal>',
      'principal allowed the operator RPCs such as GetStatus (repeatable; default admin)',
      collect,
    )
    .action(async (options) => {
      if (!options.config) throw new ConfigError('--config', 'is required: the connector configuration file (JSON)');
      const settings = loadConnectorConfig(options.config);
      const listen = options.listen ? parseListenAddress('--listen', options.listen) : undefined;
      const logger = createLogger('connector').child({ connector: settings.name });
      const server = serverSettingsFrom(options, logger);
      await initTracing({ serviceName: `connector ${settings.name}` });
      const database = await resolveDatabase({
        databaseUrl: options.databaseUrl,
        dataDir: options.dataDir,
        databaseName: `interclear_connector_${settings.name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`,
        logger,
      });
      const running = await startOnDatabase(database, logger, () =>
        startConnector({
          settings,
          databaseUrl: database.url,
          listen,
          ...server,
          logger,
          holdPassBacks: process.env[holdPassBacksVariable] === '1',
          onInstanceLockLost: (error) => stopForFailure(error, logger),
        }),
      );
      process.stderr.write(`connector ${settings.name} (${settings.ilpAddress}) serving on ${running.address}\n`);
      stopOnSignals(async () => {
        await running.stop();
        await shutdownTracing();
        await database.embedded?.stop();
      }, logger);
    });

  // The TLS flags are the connector command's own (commander gives a parent's options precedence),
  // read through optsWithGlobals().
  const withAddress = (command: Command) =>
    withManifestOption(command)
      .option(
        '--connector <host:port|dfsp>',
        "connector address, or a DFSP's name in the local network's manifest (e.g. dfsp-a)",
        environment('CONNECTOR') ?? '127.0.0.1:7003',
      )
      .option('--principal <name>', 'principal to act as (insecure mode)', environment('PRINCIPAL') ?? 'admin');

  withAddress(connector.command('status'))
    .description('show a running connector: streams, balances, money in flight, pass-backs')
    .action(async (options, command: Command) => {
      const { address, identity } = resolveTarget('connector', options.connector, command.optsWithGlobals());
      const client = createConnectorClient(address, identity);
      try {
        printJson(await withCall(() => client.getStatus({}), connectorTarget(address)));
      } finally {
        client.close();
      }
    });

  withAddress(connector.command('routes'))
    .description("list a running connector's routes")
    .action(async (options, command: Command) => {
      const { address, identity } = resolveTarget('connector', options.connector, command.optsWithGlobals());
      const client = createConnectorClient(address, identity);
      try {
        printJson(await withCall(() => client.listRoutes({}), connectorTarget(address)));
      } finally {
        client.close();
      }
    });

  withAddress(connector.command('rates'))
    .description("list a running connector's exchange rates and spread")
    .action(async (options, command: Command) => {
      const { address, identity } = resolveTarget('connector', options.connector, command.optsWithGlobals());
      const client = createConnectorClient(address, identity);
      try {
        printJson(await withCall(() => client.listRates({}), connectorTarget(address)));
      } finally {
        client.close();
      }
    });

  withAddress(connector.command('quote'))
    .description('quote a payment by source or destination amount (minor units)')
    .requiredOption('--source-ledger <prefix>', 'ILP prefix of the ledger the sender pays on')
    .requiredOption('--destination <address>', 'ILP address of the receiver')
    .option('--source-amount <amount>', 'what the sender pays, in minor units')
    .option('--destination-amount <amount>', 'what must arrive, in minor units')
    .option('--destination-hold <duration>', 'how long the last transfer is held, e.g. 5s')
    .action(async (options, command: Command) => {
      if ((options.sourceAmount === undefined) === (options.destinationAmount === undefined)) {
        throw new ConfigError('--source-amount', 'give exactly one of --source-amount and --destination-amount');
      }
      const destinationHoldDuration =
        options.destinationHold === undefined
          ? undefined
          : durationFromMs(parseDuration('--destination-hold', options.destinationHold));
      const { address, identity } = resolveTarget('connector', options.connector, command.optsWithGlobals());
      const client = createQuotingClient(address, identity);
      try {
        const response = await withCall(
          () =>
            options.sourceAmount !== undefined
              ? client.quoteBySourceAmount({
                  sourceLedgerPrefix: options.sourceLedger,
                  destinationAddress: options.destination,
                  sourceAmount: parseAmount('--source-amount', options.sourceAmount),
                  destinationHoldDuration,
                })
              : client.quoteByDestinationAmount({
                  sourceLedgerPrefix: options.sourceLedger,
                  destinationAddress: options.destination,
                  destinationAmount: parseAmount('--destination-amount', options.destinationAmount),
                  destinationHoldDuration,
                }),
          connectorTarget(address),
        );
        printJson(response.quote);
      } finally {
        client.close();
      }
    });
}
