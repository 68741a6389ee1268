/**
 * `interclear spsp --config FILE.json`: runs one DFSP's SPSP service (SpspService for other
 * DFSPs, PaymentService for the DFSP's own systems); and its operator commands,
 * `interclear spsp query|setup|payment|incoming|received`, against a running one.
 */
import type { Command } from 'commander';
import { ConfigError, environment, parseAmount, parseInteger, parseListenAddress } from '../platform/config';
import { createLogger } from '../platform/logger';
import { initTracing, shutdownTracing } from '../platform/tracing';
import { createPaymentClient, createSpspClient } from '../spsp/client';
import { loadSpspConfig } from '../spsp/config';
import { migrateSpspDatabase, openSpspOrm } from '../spsp/persistence';
import { startSpsp } from '../spsp/server';
import { registerMigrator } from './ledger';
import {
  GetIncomingPaymentResponse,
  GetPaymentResponse,
  IncomingPaymentState,
  ListIncomingPaymentsResponse,
} from '../gen/interclear/spsp/v1/spsp';
import { withCall } from './failures';
import { resolveTarget, withManifestOption } from './targets';
import { printJson } from './output';
import { resolveDatabase, startOnDatabase, stopForFailure, stopOnSignals } from './runtime';
import { serverSettingsFrom, withServerOptions } from './security';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const spspTarget = (address: string) => ({ service: 'the SPSP service', address, flag: '--spsp' });

/** Adds `interclear spsp` and its operator subcommands, and the SPSP database to `interclear migrate`. */
export function registerSpspCommands(program: Command): void {
  registerMigrator('spsp', async (databaseUrl) => {
    const orm = await openSpspOrm(databaseUrl);
    try {
      await migrateSpspDatabase(orm);
    } finally {
      await orm.close(true);
    }
  });

  const spsp = withServerOptions(program.command('spsp'), 'SPSP')
    .description("run a DFSP's SPSP service: receiver and payment service (subcommands: query, setup, payment)")
    .option('--config <file>', 'SPSP configuration (JSON), see docs/PAYMENTS.md', environment('CONFIG'))
    .option('--listen <host:port>', 'address to serve gRPC on (overrides "listen" of the config file)')
    .option('--admin <principal>', 'principal allowed to call PaymentService (repeatable; default admin)', collect)
    .action(async (options) => {
      if (!options.config) throw new ConfigError('--config', 'is required: the SPSP configuration file (JSON)');
      const settings = loadSpspConfig(options.config);
      if (options.listen) settings.listen = parseListenAddress('--listen', options.listen);
      const logger = createLogger('spsp').child({ dfsp: settings.dfsp });
      const server = serverSettingsFrom(options, logger);
      await initTracing({ serviceName: `spsp ${settings.dfsp}` });
      const database = await resolveDatabase({
        databaseUrl: options.databaseUrl,
        dataDir: options.dataDir,
        databaseName: `interclear_spsp_${settings.name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`,
        logger,
      });
      const running = await startOnDatabase(database, logger, () =>
        startSpsp({
          settings,
          databaseUrl: database.url,
          ...server,
          logger,
          onInstanceLockLost: (error) => stopForFailure(error, logger),
        }),
      );
      process.stderr.write(
        `spsp ${settings.name} (${settings.dfsp}, ${running.ledgerInfo.ilpPrefix}) serving on ${running.address}\n`,
      );
      stopOnSignals(async () => {
        await running.stop();
        await shutdownTracing();
        await database.embedded?.stop();
      }, logger);
    });

  // The TLS flags are the spsp command's own (commander gives a parent's options precedence, so
  // the same flags on a subcommand would stay empty), read through optsWithGlobals().
  const withAddress = (command: Command) =>
    withManifestOption(command)
      .option(
        '--spsp <host:port|dfsp>',
        "SPSP service address, or a DFSP's name in the local network's manifest (e.g. dfsp-b)",
        environment('SPSP') ?? '127.0.0.1:7002',
      )
      .option('--principal <name>', 'principal to act as (insecure mode)', environment('PRINCIPAL') ?? 'admin');

  withAddress(spsp.command('query <receiver>'))
    .description('describe a receiver, e.g. bob@dfsp-b (SpspService/Query)')
    .action(async (receiver: string, options, command: Command) => {
      const { address, identity } = resolveTarget('spsp', options.spsp, command.optsWithGlobals());
      const client = createSpspClient(address, identity);
      try {
        printJson(await withCall(() => client.query({ receiver }), spspTarget(address)));
      } finally {
        client.close();
      }
    });

  withAddress(spsp.command('setup <receiver> <destination-amount>'))
    .description('create a payment request for an amount in minor units (SpspService/SetupPayment)')
    .action(async (receiver: string, amount: string, options, command: Command) => {
      const destinationAmount = parseAmount('destination-amount', amount);
      const { address, identity } = resolveTarget('spsp', options.spsp, command.optsWithGlobals());
      const client = createSpspClient(address, identity);
      try {
        printJson(
          await withCall(
            () => client.setupPayment({ receiver, destinationAmount, data: Buffer.alloc(0) }),
            spspTarget(address),
          ),
        );
      } finally {
        client.close();
      }
    });

  withAddress(spsp.command('payment <payment-id>'))
    .description('show a payment sent by this DFSP (PaymentService/GetPayment)')
    .action(async (paymentId: string, options, command: Command) => {
      const { address, identity } = resolveTarget('spsp', options.spsp, command.optsWithGlobals());
      const client = createPaymentClient(address, identity);
      try {
        printJson(await withCall(() => client.getPayment({ paymentId }), spspTarget(address)), GetPaymentResponse);
      } finally {
        client.close();
      }
    });

  withAddress(spsp.command('incoming <transfer-id>'))
    .description(
      "show what this DFSP's receiver got by a transfer: sender data, amount, outcome (PaymentService/GetIncomingPayment)",
    )
    .action(async (transferId: string, options, command: Command) => {
      const { address, identity } = resolveTarget('spsp', options.spsp, command.optsWithGlobals());
      const client = createPaymentClient(address, identity);
      try {
        printJson(
          await withCall(() => client.getIncomingPayment({ transferId }), spspTarget(address)),
          GetIncomingPaymentResponse,
        );
      } finally {
        client.close();
      }
    });

  withAddress(spsp.command('received [receiver]'))
    .description(
      "list the payments this DFSP's receivers got, oldest first, all or one receiver's (PaymentService/ListIncomingPayments)",
    )
    .option('--state <state>', 'only executed, rejected or expired ones')
    .option('--page-size <n>', 'at most this many (default 100, at most 1000)', '0')
    .option('--page-token <token>', "a previous page's next_page_token", '')
    .action(async (receiver: string | undefined, options, command: Command) => {
      const states: Record<string, IncomingPaymentState> = {
        executed: IncomingPaymentState.INCOMING_PAYMENT_STATE_EXECUTED,
        rejected: IncomingPaymentState.INCOMING_PAYMENT_STATE_REJECTED,
        expired: IncomingPaymentState.INCOMING_PAYMENT_STATE_EXPIRED,
      };
      if (options.state !== undefined && !Object.hasOwn(states, options.state)) {
        throw new ConfigError('--state', `must be executed, rejected or expired, got "${options.state}"`);
      }
      const pageSize = parseInteger('--page-size', options.pageSize, 0, 1000);
      const { address, identity } = resolveTarget('spsp', options.spsp, command.optsWithGlobals());
      const client = createPaymentClient(address, identity);
      try {
        printJson(
          await withCall(
            () =>
              client.listIncomingPayments({
                receiver: receiver ?? '',
                state: options.state === undefined ? 0 : states[options.state],
                pageSize,
                pageToken: options.pageToken,
              }),
            spspTarget(address),
          ),
          ListIncomingPaymentsResponse,
        );
      } finally {
        client.close();
      }
    });
}
