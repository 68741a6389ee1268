/**
 * `interclear pay`: sends a payment through a running network from the command line, showing
 * each hop as it is prepared and executed. With a network manifest (the default one of
 * `interclear network`, or --manifest) it follows every ledger; given only an SPSP service's
 * address (--spsp), it reports the payment's own states.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Command } from 'commander';
import { status, type ServiceError } from '@grpc/grpc-js';
import { PaymentState, type Payment, type WatchPaymentResponse } from '../gen/interclear/spsp/v1/spsp';
import { manifestPath, readManifest } from '../network/manifest';
import { adminIdentity, describeHop, describeOutcome, senderOf, sendTracedPayment } from '../network/payment';
import { ConfigError, environment, parseAmount } from '../platform/config';
import { createPaymentClient } from '../spsp/client';
import { paymentStateFromWire } from '../spsp/wire';
import { clientIdentity, withTlsOptions } from './security';
import { describeCallFailure, withCall, type CallTarget } from './failures';
import { uncertainOutcomeCodes } from '../platform/client';
import { isUuid } from '../platform/ids';

const write = (line = '') => process.stdout.write(`${line}\n`);

/** Pays through the PaymentService at `address` alone, reporting the payment's state changes. */
async function payDirectly(
  address: string,
  identity: ReturnType<typeof clientIdentity>,
  request: Parameters<ReturnType<typeof createPaymentClient>['pay']>[0],
): Promise<Payment> {
  const client = createPaymentClient(address, identity);
  let finished = false;
  let retry: NodeJS.Timeout | undefined;
  try {
    const paying = client.pay(request);
    let last: PaymentState | undefined;
    const open = () => {
      retry = undefined;
      // Pay answered (or was refused) meanwhile: the client is closed, and the outcome is known.
      if (finished) return;
      const stream = client.watchPayment({ paymentId: request.paymentId });
      stream.on('data', (response: WatchPaymentResponse) => {
        const state = response.payment?.state;
        if (state !== undefined && state !== last) {
          last = state;
          write(`  payment ${paymentStateFromWire(state) ?? state}`);
        }
      });
      stream.on('error', (error: ServiceError) => {
        // The payment is recorded a moment after Pay starts: until then the watch is NOT_FOUND.
        if (error.code === status.NOT_FOUND && last === undefined && !finished) retry = setTimeout(open, 25);
      });
    };
    open();
    return (await paying).payment!;
  } finally {
    // No retry may outlive the client it would call; a watch already open ends with the payment.
    finished = true;
    clearTimeout(retry);
    client.close();
  }
}

/** The payment recorded under `paymentId` by the SPSP service at `address`, if any. */
async function findPayment(
  address: string,
  identity: ReturnType<typeof clientIdentity>,
  paymentId: string,
): Promise<Payment | undefined> {
  const client = createPaymentClient(address, identity);
  try {
    return (await client.getPayment({ paymentId })).payment;
  } catch (error) {
    if ((error as ServiceError).code === status.NOT_FOUND) return undefined;
    throw error;
  } finally {
    client.close();
  }
}

/** Adds `interclear pay`. */
/**
 * Runs a Pay call. When its outcome cannot be known (the call was cut, timed out, or the service
 * could not tell yet), the payment may have been made: the error says how to see it, and that the
 * same command with its id is the safe retry — a new id would be a second payment.
 */
async function paying<T>(
  paymentId: string,
  spspFlags: string,
  action: () => Promise<T>,
  target?: CallTarget,
): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const described = describeCallFailure(error, target);
    const code = (error as ServiceError | undefined)?.code;
    if (typeof code !== 'number' || !uncertainOutcomeCodes.has(code)) throw described;
    const message = described instanceof Error ? described.message : String(described);
    throw new Error(
      `${message}\npayment ${paymentId} may have been made: see it with ` +
        `\`npx interclear spsp payment ${paymentId} ${spspFlags}\`, or run this command again with ` +
        `--id ${paymentId} (one payment id never pays twice; a new one would be a second payment)`,
    );
  }
}

export function registerPayCommand(program: Command): void {
  withTlsOptions(program.command('pay'))
    .description('send a payment through a running network, e.g. --from alice@dfsp-a --to bob@dfsp-b')
    .requiredOption('--to <receiver>', 'the receiver: name@dfsp or an ILP address')
    .option('--from <sender>', "the sender, name@dfsp: pays from that customer's account at its DFSP")
    .option('--source-amount <amount>', "what the sender pays, in minor units of the sender's ledger")
    .option('--destination-amount <amount>', "what the receiver gets, in minor units of the receiver's ledger")
    .option('--id <uuid>', 'payment id, the idempotency key (default: a new UUID)')
    .option('--data <text>', 'data for the receiver, carried in the ILP packet (e.g. an invoice number)')
    .option(
      '--manifest <file>',
      'the running network (default: the manifest of `interclear network`)',
      environment('MANIFEST') ?? manifestPath(path.join('.interclear', 'network')),
    )
    .option('--spsp <host:port>', "without a manifest: the sender's SPSP service (PaymentService)")
    .option('--sender-account <name>', 'with --spsp: the account to pay from')
    .option(
      '--principal <name>',
      'with --spsp: principal to act as (insecure mode)',
      environment('PRINCIPAL') ?? 'admin',
    )
    .action(async (options, command: Command) => {
      if ((options.sourceAmount === undefined) === (options.destinationAmount === undefined)) {
        throw new ConfigError('--source-amount', 'give exactly one of --source-amount and --destination-amount');
      }
      const fixed = options.sourceAmount !== undefined ? 'source' : 'destination';
      const amount = parseAmount(`--${fixed}-amount`, options.sourceAmount ?? options.destinationAmount);
      if (options.id !== undefined && !isUuid(options.id)) {
        throw new ConfigError('--id', `must be a UUID like 3fa85f64-5717-4562-b3fc-2c963f66afa6, got "${options.id}"`);
      }
      const paymentId = options.id ?? randomUUID();
      const data = options.data === undefined ? Buffer.alloc(0) : Buffer.from(options.data, 'utf8');
      let payment: Payment;
      // The payment under a given id, if there already was one before this command.
      let earlier: Payment | undefined;
      if (options.spsp) {
        if (!options.senderAccount) throw new ConfigError('--sender-account', 'is required with --spsp');
        write(`payment ${paymentId}: ${options.senderAccount} → ${options.to}`);
        const target = { service: 'the SPSP service', address: options.spsp, flag: '--spsp' };
        const identity = clientIdentity(options);
        if (options.id) earlier = await withCall(() => findPayment(options.spsp, identity, paymentId), target);
        payment = await paying(
          paymentId,
          `--spsp ${options.spsp}`,
          () =>
            payDirectly(options.spsp, identity, {
              paymentId,
              senderAccount: options.senderAccount,
              receiver: options.to,
              amount:
                fixed === 'source'
                  ? { $case: 'sourceAmount', value: amount }
                  : { $case: 'destinationAmount', value: amount },
              data,
            }),
          target,
        );
      } else {
        if (!options.from) throw new ConfigError('--from', 'is required (or give --spsp and --sender-account)');
        // Flags that only apply to --spsp must not look as if they were used (the environment's
        // INTERCLEAR_TLS_* may stay set for the other commands).
        for (const [flag, name] of [
          ['--tls-cert', 'tlsCert'],
          ['--tls-key', 'tlsKey'],
          ['--tls-ca', 'tlsCa'],
          ['--sender-account', 'senderAccount'],
        ] as const) {
          if (command.getOptionValueSource(name) === 'cli') {
            throw new ConfigError(
              flag,
              'applies with --spsp only: with --from, pay calls the network of the manifest, as the manifest says ' +
                '(its addresses and its administrator certificate)',
            );
          }
        }
        const manifest = readManifest(options.manifest);
        write(`payment ${paymentId}: ${options.from} → ${options.to}, ${fixed} amount ${amount} (minor units)`);
        if (options.id) {
          const spsp = senderOf(manifest, options.from).dfsp.spsp;
          earlier = await withCall(() => findPayment(spsp, adminIdentity(manifest), paymentId));
        }
        payment = await paying(
          paymentId,
          `--spsp ${senderOf(manifest, options.from).dfsp.name} --manifest ${options.manifest}`,
          () =>
            sendTracedPayment(manifest, { from: options.from, to: options.to, fixed, amount, paymentId, data }, (hop) =>
              write(`  ${describeHop(hop)}`),
            ),
        );
      }
      // A payment id names one payment: given again, Pay returns that payment as it stands — or,
      // when it had failed before any money moved, runs it again.
      if (earlier) {
        const made = earlier.createTime ? `, at ${earlier.createTime.toISOString()}` : '';
        if (earlier.state === PaymentState.PAYMENT_STATE_FAILED) {
          const why = earlier.failure?.reason ? ` (${earlier.failure.reason})` : '';
          write(`(payment ${paymentId} had failed earlier${made}${why}, with no money moved: this was a new attempt)`);
        } else {
          write(`(payment ${paymentId} was made earlier${made}: this is its record; nothing was sent again)`);
        }
      }
      for (const line of describeOutcome(payment)) write(line);
      if (payment.state !== PaymentState.PAYMENT_STATE_EXECUTED) process.exitCode = 1;
    });
}
