/**
 * Operator commands against a running ledger: accounts, deposits, withdrawals, transfers and
 * `watch`, which tails a notification stream.
 */
import type { Command } from 'commander';
import {
  DepositResponse,
  Event,
  EventType,
  GetTransferResponse,
  ListTransfersResponse,
  TransferState,
  type Movement,
  WithdrawResponse,
  type SubscribeResponse,
} from '../gen/interclear/ledger/v1/ledger';
import { createLedgerClient, type LedgerClient } from '../ledger/client';
import { ConfigError, environment, minorUnitsMax, parseInteger, parseAmount, parseSequence } from '../platform/config';
import { derivedUuid } from '../platform/ids';
import * as grpc from '@grpc/grpc-js';
import { describeCallFailure } from './failures';
import { resolveTarget, withManifestOption } from './targets';
import { printJson, toJson } from './output';
import { withTlsOptions } from './security';

interface ConnectionOptions {
  ledger: string;
  principal: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  manifest?: string;
}

function withConnection(command: Command): Command {
  return withTlsOptions(
    withManifestOption(command)
      .option(
        '--ledger <host:port|name>',
        "ledger address, or a ledger's name in the local network's manifest (central, dfsp-a, …)",
        environment('LEDGER') ?? '127.0.0.1:7001',
      )
      .option(
        '--principal <name>',
        'principal to act as without TLS (insecure mode)',
        environment('PRINCIPAL') ?? 'admin',
      ),
  );
}

async function withClient<T>(options: ConnectionOptions, action: (client: LedgerClient) => Promise<T>): Promise<T> {
  const { address, identity } = resolveTarget('ledger', options.ledger, options);
  const client = createLedgerClient(address, identity);
  try {
    return await action(client);
  } catch (error) {
    throw describeCallFailure(error, { service: 'the ledger', address, flag: '--ledger' });
  } finally {
    client.close();
  }
}

/** How long before a command a movement it gets back must have been recorded to be an earlier run's. */
const earlierRunMs = 60_000;

/** The most items a ledger returns in one page of a list. */
const pageSizeMax = 1000;

const parsePageSize = (value: string) => parseInteger('--page-size', value, 1, pageSizeMax);

const stateNames: Record<string, TransferState> = {
  prepared: TransferState.TRANSFER_STATE_PREPARED,
  executed: TransferState.TRANSFER_STATE_EXECUTED,
  rejected: TransferState.TRANSFER_STATE_REJECTED,
};

const eventTypeNames: Record<string, EventType> = {
  prepared: EventType.EVENT_TYPE_TRANSFER_PREPARED,
  executed: EventType.EVENT_TYPE_TRANSFER_EXECUTED,
  rejected: EventType.EVENT_TYPE_TRANSFER_REJECTED,
  message: EventType.EVENT_TYPE_MESSAGE_SENT,
};

export function registerOperatorCommands(program: Command): void {
  const account = program.command('account').description('manage ledger accounts');
  withConnection(account.command('create <name>'))
    .description('create an account (admin)')
    .requiredOption('--owner <principal>', 'principal that owns the account')
    .option('--minimum-balance <amount>', 'lowest allowed balance in minor units (negative for a credit line)')
    .option('--unlimited', 'no lower limit on the balance')
    .option('--disabled', 'create it disabled')
    .action(async (name: string, options) =>
      withClient(options, async (client) => {
        const minimumBalance =
          options.minimumBalance === undefined ? undefined : parseSigned('--minimum-balance', options.minimumBalance);
        printJson(
          await client.createAccount({
            name,
            owner: options.owner,
            minimumBalance,
            minimumBalanceUnlimited: Boolean(options.unlimited),
            disabled: Boolean(options.disabled),
          }),
        );
      }),
    );
  withConnection(account.command('get <name>'))
    .description('show an account and its balances')
    .action(async (name: string, options) =>
      withClient(options, async (client) => printJson(await client.getAccount({ name }))),
    );
  withConnection(account.command('list'))
    .description('list accounts')
    .option('--page-size <n>', 'accounts per page', '100')
    .option('--page-token <token>', 'continue from a previous page', '')
    .action(async (options) =>
      withClient(options, async (client) =>
        printJson(
          await client.listAccounts({ pageSize: parsePageSize(options.pageSize), pageToken: options.pageToken }),
        ),
      ),
    );
  withConnection(account.command('update <name>'))
    .description('change limits, owner or disabled flag (admin)')
    .option('--minimum-balance <amount>', 'lowest allowed balance in minor units')
    .option('--unlimited', 'no lower limit on the balance')
    .option('--disable', 'disable the account')
    .option('--enable', 'enable the account')
    .option('--owner <principal>', 'new owner')
    .action(async (name: string, options) =>
      withClient(options, async (client) =>
        printJson(
          await client.updateAccount({
            name,
            minimumBalance:
              options.minimumBalance === undefined
                ? undefined
                : parseSigned('--minimum-balance', options.minimumBalance),
            minimumBalanceUnlimited: options.unlimited ? true : undefined,
            disabled: options.disable ? true : options.enable ? false : undefined,
            owner: options.owner,
          }),
        ),
      ),
    );

  for (const kind of ['deposit', 'withdraw'] as const) {
    withConnection(program.command(`${kind} <account> <amount>`))
      .description(
        `${kind === 'deposit' ? 'move funds into' : 'move funds out of'} an account (admin); amount in minor units`,
      )
      .requiredOption('--reference <text>', 'reference in the outside system (core ledger, settlement bank)')
      .option(
        '--id <uuid>',
        'idempotency id (default: derived from the account and --reference, so that running the same command again, e.g. after a timeout, cannot move the funds twice)',
      )
      .action(async (accountName: string, amount: string, options) =>
        withClient(options, async (client) => {
          const request = {
            account: accountName,
            amount: parseAmount('amount', amount),
            externalReference: options.reference,
          };
          // One reference in the outside system is one movement of funds: repeating the command
          // names the same operation, which the ledger returns instead of applying it again.
          const id = options.id ?? derivedUuid(`interclear.cli.${kind}`, [accountName, options.reference]);
          const started = Date.now();
          let movement: Movement | undefined;
          try {
            if (kind === 'deposit') {
              const response = await client.deposit({ depositId: id, ...request });
              printJson(response, DepositResponse);
              movement = response.deposit;
            } else {
              const response = await client.withdraw({ withdrawalId: id, ...request });
              printJson(response, WithdrawResponse);
              movement = response.withdrawal;
            }
          } catch (error) {
            if (options.id === undefined && (error as grpc.ServiceError).code === grpc.status.ALREADY_EXISTS) {
              throw new Error(
                `ALREADY_EXISTS: a ${kind} of another amount or account was made under reference ` +
                  `"${options.reference}" (its id derives from the account and the reference): one reference is ` +
                  'one movement of funds; give this one a reference of its own (or an --id)',
              );
            }
            throw error;
          }
          // Recorded well before this command (beyond any clock difference): an earlier run's.
          const recorded = movement?.createTime;
          if (recorded && recorded.getTime() < started - earlierRunMs) {
            process.stderr.write(
              `note: this ${kind} was recorded earlier, at ${recorded.toISOString()}, under reference ` +
                `"${options.reference}"; nothing moved now. A new ${kind} needs a new --reference (or --id).\n`,
            );
          }
        }),
      );
  }

  const transfer = program.command('transfer').description('inspect transfers');
  withConnection(transfer.command('get <id>'))
    .description('show a transfer')
    .action(async (id: string, options) =>
      withClient(options, async (client) =>
        printJson(await client.getTransfer({ transferId: id }), GetTransferResponse),
      ),
    );
  withConnection(transfer.command('list'))
    .description('list transfers, oldest first')
    .option('--account <name>', 'only transfers of this account')
    .option('--state <state>', 'prepared, executed or rejected')
    .option('--page-size <n>', 'transfers per page', '100')
    .option('--page-token <token>', 'continue from a previous page', '')
    .action(async (options) =>
      withClient(options, async (client) => {
        const state = options.state === undefined ? 0 : stateNames[options.state];
        if (state === undefined) throw new ConfigError('--state', 'must be prepared, executed or rejected');
        printJson(
          await client.listTransfers({
            account: options.account ?? '',
            state,
            pageSize: parsePageSize(options.pageSize),
            pageToken: options.pageToken,
          }),
          ListTransfersResponse,
        );
      }),
    );

  withConnection(program.command('watch'))
    .description('tail a ledger notification stream (one JSON event per line)')
    .option('--account <name>', 'follow this account (repeatable; default: all the principal owns)', collect, [])
    .option('--type <type>', 'prepared, executed, rejected or message (repeatable; default: all)', collect, [])
    .option('--after <sequence>', 'replay events after this sequence number first')
    .action(async (options) => {
      const eventTypes = (options.type as string[]).map((type) => {
        const value = eventTypeNames[type];
        if (value === undefined) throw new ConfigError('--type', 'must be prepared, executed, rejected or message');
        return value;
      });
      const afterSequence = options.after === undefined ? undefined : parseSequence('--after', options.after);
      const { address, identity } = resolveTarget('ledger', options.ledger, options);
      const client = createLedgerClient(address, identity);
      const stream = client.subscribe({ accounts: options.account, eventTypes, afterSequence });
      let outputClosed = false;
      // A reader that went away (`watch | head`) ends the watch quietly, as it ends a Unix tool.
      let onOutputError: (error: NodeJS.ErrnoException) => void = () => undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          onOutputError = (error) => {
            outputClosed = true;
            stream.cancel();
            if (error.code !== 'EPIPE') reject(error);
          };
          process.stdout.on('error', onOutputError);
          stream.on('data', (response) => {
            if (!outputClosed) process.stdout.write(`${watchLine(response)}\n`);
          });
          stream.on('error', (error: { code?: number }) => {
            // CANCELLED: this command cancelled the stream (Ctrl-C, or its reader went away).
            if (error.code === 1) resolve();
            else reject(describeCallFailure(error, { service: 'the ledger', address, flag: '--ledger' }));
          });
          stream.on('end', resolve);
          process.once('SIGINT', () => stream.cancel());
        });
      } finally {
        // Once the output failed, a write still queued may report it again: stay listening.
        if (!outputClosed) process.stdout.off('error', onOutputError);
        client.close();
      }
    });
}

/** One line of `watch`: the stream's opening (its head sequence), then each event, enums by name. */
function watchLine(response: SubscribeResponse): string {
  return response.kind?.$case === 'event' ? toJson(response.kind.value, 0, Event) : toJson(response.kind?.value, 0);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A balance limit: a whole number of minor units, negative for a credit line, within PostgreSQL int8. */
function parseSigned(flag: string, value: string): bigint {
  if (!/^-?\d+$/.test(value)) throw new ConfigError(flag, `must be a whole number of minor units, got "${value}"`);
  const amount = BigInt(value);
  if (amount < -minorUnitsMax - 1n || amount > minorUnitsMax) {
    throw new ConfigError(flag, `must be from ${-minorUnitsMax - 1n} to ${minorUnitsMax} minor units, got "${value}"`);
  }
  return amount;
}
