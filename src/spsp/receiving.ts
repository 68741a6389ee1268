/**
 * The receiving DFSP's SPSP server (SpspService): describes its receivers and issues payment
 * requests for them. Stateless: a payment request is derived from the receiver secret, so
 * SetupPayment stores nothing and any replica can fulfil what another set up.
 */
import { createPaymentRequest } from '../ilp';
import type { SpspSettings } from './config';
import { SpspError, Violations } from './errors';
import { maximumPaymentAmount, type PaymentRequestInfo, type ReceiverInfo } from './model';
import { RemoteError, type LedgerAccountView, type LedgerSummary, type SpspLedger } from './ports';
import { parseReceiverName, receiverNameRule, type ReceiverBook } from './receivers';

/** Largest packet data a payment request carries. */
export const maximumDataBytes = 4096;

/**
 * How long SetupPayment relies on what an earlier Query (or SetupPayment) read of a receiver's
 * ledger account. A sender queries the receiver, quotes, then sets the payment up: the second
 * read of the same account a moment later would only repeat the first. Query always reads.
 */
export const receiverAccountFreshMs = 2_000;

/** Input of SetupPayment. */
export interface SetupPaymentInput {
  receiver: string;
  destinationAmount: bigint;
  data: Buffer;
  /** Unset: the configured default. */
  expiryMs: number | undefined;
}

/** What the receiving service needs. */
export interface ReceivingDependencies {
  settings: Pick<SpspSettings, 'secret' | 'paymentRequestExpiryMs' | 'maxPaymentRequestExpiryMs' | 'destinationHoldMs'>;
  ledgerInfo: LedgerSummary;
  receivers: ReceiverBook;
  ledger: Pick<SpspLedger, 'getAccount'>;
  now: () => Date;
}

/** The SpspService in domain terms. */
export interface ReceivingService {
  query(receiver: string): Promise<ReceiverInfo>;
  setupPayment(input: SetupPaymentInput): Promise<PaymentRequestInfo>;
}

/** Creates the receiving side over its dependencies (see {@link ReceivingDependencies}). */
export function createReceivingService(dependencies: ReceivingDependencies): ReceivingService {
  const { settings, ledgerInfo, receivers, ledger, now } = dependencies;
  /** The last answer about each receiver's account (bounded: only configured receivers are read). */
  const accountReads = new Map<string, { account: LedgerAccountView | undefined; readAtMs: number }>();

  /** Reads of an account on their way to the ledger, by account name. */
  const readsInFlight = new Map<string, Promise<LedgerAccountView | undefined>>();

  /**
   * The receiver's ledger account, as read at most `maxAgeMs` ago (0: read now). A read already
   * on its way answers every caller that arrives meanwhile — its answer is at most one round trip
   * older than theirs would be — so a receiver paid by many senders at once costs the ledger one
   * read at a time, not one per Query. A caller that joins shares the read's deadline (the
   * remaining part of it) and its trace: the ledger call appears under the first caller's.
   */
  function readAccount(name: string, maxAgeMs: number): Promise<LedgerAccountView | undefined> {
    const recent = maxAgeMs > 0 ? accountReads.get(name) : undefined;
    if (recent && now().getTime() - recent.readAtMs <= maxAgeMs) return Promise.resolve(recent.account);
    const inFlight = readsInFlight.get(name);
    if (inFlight) return inFlight;
    const readAtMs = now().getTime();
    const read = ledger
      .getAccount(name)
      .then((account) => {
        accountReads.set(name, { account, readAtMs });
        return account;
      })
      .finally(() => readsInFlight.delete(name));
    readsInFlight.set(name, read);
    return read;
  }

  function query(receiverText: string): Promise<ReceiverInfo> {
    return describeReceiver(receiverText, 0);
  }

  async function describeReceiver(receiverText: string, accountMaxAgeMs: number): Promise<ReceiverInfo> {
    const name = parseReceiverName(receiverText);
    if (name === undefined) {
      const violations = new Violations();
      violations.add('receiver', receiverNameRule);
      violations.throwIfAny();
    }
    const receiver = receivers.find(name!);
    if (receiver === undefined) {
      throw new SpspError('RECEIVER_NOT_FOUND', `"${receiverText}" is not a receiver of ${receivers.dfsp}`, {
        metadata: { receiver: receiverText },
      });
    }
    const identifier = receivers.identifier(receiver);
    if (receiver.disabled) {
      throw new SpspError('RECEIVER_DISABLED', `${identifier} cannot receive payments`, {
        metadata: { receiver: identifier },
      });
    }
    // The ledger account is the truth about whether money can arrive: an operator may disable
    // it there without touching this service's configuration.
    let account;
    try {
      account = await readAccount(receiver.account, accountMaxAgeMs);
    } catch (error) {
      if (error instanceof RemoteError && error.kind === 'refused' && error.reason === 'PERMISSION_DENIED') {
        // A configuration error of this DFSP: the account exists but this service does not hold it.
        throw new SpspError(
          'RECEIVER_DISABLED',
          `${identifier} cannot receive payments: this service does not hold its account`,
          {
            metadata: { receiver: identifier },
          },
        );
      }
      throw ledgerUnavailable(error);
    }
    if (account === undefined) {
      throw new SpspError('RECEIVER_NOT_FOUND', `${identifier} has no account on ${ledgerInfo.ilpPrefix}`, {
        metadata: { receiver: identifier },
      });
    }
    if (account.disabled) {
      throw new SpspError('RECEIVER_DISABLED', `${identifier}'s account is disabled`, {
        metadata: { receiver: identifier },
      });
    }
    return {
      identifier,
      ilpAddress: receivers.address(receiver),
      name: receiver.displayName,
      currencyCode: ledgerInfo.currencyCode,
      scale: ledgerInfo.scale,
      minimumAmount: receiver.minimumAmount,
      maximumAmount: receiver.maximumAmount,
      destinationHoldMs: settings.destinationHoldMs,
    };
  }

  async function setupPayment(input: SetupPaymentInput): Promise<PaymentRequestInfo> {
    const violations = new Violations();
    // As Pay: no ledger carries more than 2^63 - 1 minor units, so a larger request could never be paid.
    if (input.destinationAmount <= 0n || input.destinationAmount > maximumPaymentAmount) {
      violations.add('destination_amount', 'must be from 1 to 2^63 - 1 minor units');
    }
    if (input.data.length > maximumDataBytes) violations.add('data', `must be at most ${maximumDataBytes} bytes`);
    if (input.expiryMs !== undefined && input.expiryMs < 1000) {
      violations.add('expiry_duration', 'must be at least 1s');
    }
    violations.throwIfAny();
    const receiver = await describeReceiver(input.receiver, receiverAccountFreshMs);
    const limits = {
      receiver: receiver.identifier,
      minimum_amount: receiver.minimumAmount.toString(),
      maximum_amount: receiver.maximumAmount?.toString() ?? '',
      currency_code: receiver.currencyCode,
      scale: String(receiver.scale),
    };
    if (input.destinationAmount < receiver.minimumAmount) {
      throw new SpspError(
        'AMOUNT_BELOW_MINIMUM',
        `${receiver.identifier} accepts at least ${receiver.minimumAmount} (minor units of ${receiver.currencyCode}), not ${input.destinationAmount}`,
        { metadata: limits },
      );
    }
    if (receiver.maximumAmount !== null && input.destinationAmount > receiver.maximumAmount) {
      throw new SpspError(
        'AMOUNT_ABOVE_MAXIMUM',
        `${receiver.identifier} accepts at most ${receiver.maximumAmount} (minor units of ${receiver.currencyCode}), not ${input.destinationAmount}`,
        { metadata: limits },
      );
    }
    const expiryMs = Math.min(input.expiryMs ?? settings.paymentRequestExpiryMs, settings.maxPaymentRequestExpiryMs);
    const request = createPaymentRequest({
      secret: settings.secret,
      destinationAccount: receiver.ilpAddress,
      destinationAmount: input.destinationAmount,
      data: input.data,
      expiresAt: new Date(now().getTime() + expiryMs),
    });
    return {
      receiver,
      destinationAddress: request.destinationAddress,
      destinationAmount: request.destinationAmount,
      ilpPacket: request.packet,
      executionCondition: request.condition,
      expiresAt: request.expiresAt,
      data: request.data,
    };
  }

  return { query, setupPayment };
}

function ledgerUnavailable(error: unknown): SpspError {
  const message = error instanceof RemoteError ? error.message : String(error);
  return new SpspError('LEDGER_UNAVAILABLE', `cannot reach the ledger: ${message}`, { cause: error });
}
