/**
 * The sending DFSP's payment service (PaymentService, the seed's "SPSP client proxy"), as SPEC.md
 * §2 runs it: query the receiver's SPSP server, quote through our connector, set up the payment
 * with the receiver's SPSP server, prepare the first transfer on our ledger, and follow it to its
 * outcome on the ledger's notification stream.
 *
 * Every Pay is recorded before anything is sent, so a payment id means one payment: a repeat with
 * the same content waits for (or returns) the recorded outcome; with different content it fails.
 * An attempt that fails before its transfer was sent is recorded as FAILED; no money moved, so a
 * repeat of the same Pay starts a new attempt. Once a transfer has been sent, its fate is the
 * ledger's to tell: a prepare whose answer was lost stays PENDING until the stream (or the
 * reconciler, after the transfer's expiry) reports what the ledger did.
 */
import { randomUUID } from 'node:crypto';
import { deserializeIlpPayment, isFulfillmentOf } from '../ilp';
import type { Logger } from '../platform/logger';
import { SpspError, Violations, type SpspErrorReason, isSpspErrorReason } from './errors';
import {
  isFinalPaymentState,
  maximumPaymentAmount,
  type FixedAmount,
  type IlpError,
  type Payment,
  type PaymentOrder,
  type PaymentQuote,
  type PaymentRequestInfo,
  type ReceiverInfo,
} from './model';
import { AccountNotOwnedError } from './follower';
import type { PaymentNotifier } from './notifier';
import {
  RemoteError,
  type LedgerNotification,
  type LedgerSummary,
  type LedgerTransferView,
  type Quoter,
  type RemoteSpsp,
  type SpspLedger,
} from './ports';
import { maximumDataBytes } from './receiving';
import { parseReceiverName, receiverNameRule, type Directory } from './receivers';
import type { SpspStore } from './store';
import type { DirectoryEntry } from './config';
import { isUuid } from '../platform/ids';

const accountNamePattern = /^[a-zA-Z0-9_-]{1,86}$/;

/** Input of Quote. */
export interface QuoteInput {
  receiver: string;
  /** Undefined when the request named no amount. */
  fixedAmount: FixedAmount | undefined;
  amount: bigint;
}

/** Input of Pay. */
export interface PayInput extends QuoteInput {
  paymentId: string;
  senderAccount: string;
  data: Buffer;
  maximumSourceAmount: bigint | undefined;
}

/** Timing of the sending side. */
export interface SendingTiming {
  /** How long after a transfer's expiry the ledger is asked directly for its fate. */
  overdueGraceMs: number;
  /** How long an attempt may stay pending without a transfer before it counts as interrupted. */
  abandonedAfterMs: number;
  /** How often a waiter re-reads a payment when no wake-up came (changes by other replicas). */
  pollIntervalMs: number;
  /**
   * How long past its transfer's expiry Pay waits for an outcome the ledger cannot tell yet
   * (it is down) before it answers that the outcome is unknown.
   */
  outcomeWaitMs: number;
}

/** Defaults of {@link SendingTiming}. */
export const defaultSendingTiming: SendingTiming = {
  overdueGraceMs: 2_000,
  abandonedAfterMs: 60_000,
  pollIntervalMs: 1_000,
  outcomeWaitMs: 30_000,
};

/** What the sending service needs. */
export interface SendingDependencies {
  /** This DFSP's name (the host part of its receivers' identifiers). */
  dfsp: string;
  /** This DFSP's ledger: where the first transfer is prepared. */
  ledgerInfo: LedgerSummary;
  ledger: Pick<SpspLedger, 'getAccount' | 'prepareTransfer' | 'getTransfer' | 'getFulfillment'>;
  quoter: Quoter;
  remote: RemoteSpsp;
  directory: Directory;
  store: Pick<
    SpspStore,
    | 'insertPayment'
    | 'findPayment'
    | 'findPaymentByTransfer'
    | 'claimRetry'
    | 'recordAttempt'
    | 'markPrepared'
    | 'markExecuted'
    | 'markRejected'
    | 'markFailed'
    | 'findOverduePayments'
  >;
  notifier: PaymentNotifier;
  /**
   * The principal this service acts as on its ledger: it must own the sender accounts (the
   * ledger checks it when the transfer is prepared).
   */
  principal: string;
  /** Makes sure the ledger notifications of `account` reach this service before a transfer is sent. */
  follow(account: string): Promise<void>;
  now: () => Date;
  logger: Logger;
  timing?: Partial<SendingTiming>;
}

/** The PaymentService in domain terms. */
export interface SendingService {
  quote(input: QuoteInput): Promise<PaymentQuote>;
  pay(input: PayInput): Promise<Payment>;
  getPayment(paymentId: string): Promise<Payment>;
  watchPayment(paymentId: string, signal: AbortSignal): AsyncGenerator<Payment>;
  /** Applies a notification about a transfer debiting one of the service's accounts. */
  applyNotification(notification: Extract<LedgerNotification, { kind: 'transfer' }>): Promise<void>;
  /** Settles payments whose outcome is overdue; returns how many were looked at. */
  reconcileOverdue(): Promise<number>;
}

/** Creates the sending side over its dependencies (see {@link SendingDependencies}). */
export function createSendingService(dependencies: SendingDependencies): SendingService {
  const { ledgerInfo, ledger, quoter, remote, directory, store, notifier, logger, now } = dependencies;
  const timing: SendingTiming = { ...defaultSendingTiming, ...dependencies.timing };

  function validateAmount(violations: Violations, input: QuoteInput): void {
    if (input.fixedAmount === undefined) {
      violations.add('amount', 'set source_amount or destination_amount');
    } else if (input.amount <= 0n || input.amount > maximumPaymentAmount) {
      violations.add(`${input.fixedAmount}_amount`, 'must be from 1 to 2^63 - 1 minor units');
    }
  }

  /**
   * The receiver's syntax, checked before anything is recorded: a name that can never be paid is
   * a malformed request, not a failed payment (and text PostgreSQL cannot store, such as a NUL,
   * never reaches it). A well-formed name of an unknown DFSP is the directory's answer, recorded.
   */
  function validateReceiver(violations: Violations, receiver: string): void {
    if (receiver === '') violations.add('receiver', 'is required');
    else if (parseReceiverName(receiver) === undefined) violations.add('receiver', receiverNameRule);
  }

  function resolveDfsp(receiver: string): DirectoryEntry {
    const name = parseReceiverName(receiver);
    if (name === undefined) {
      const violations = new Violations();
      violations.add('receiver', receiverNameRule);
      violations.throwIfAny();
    }
    const entry = directory.resolve(name!);
    if (entry === undefined) {
      const ownDfsp =
        name!.kind === 'identifier' ? name!.dfsp === dependencies.dfsp : name!.address.startsWith(ledgerInfo.ilpPrefix);
      throw new SpspError(
        'UNKNOWN_DFSP',
        ownDfsp
          ? `"${receiver}" is at this DFSP (${dependencies.dfsp}), not at another one in the directory: a payment ` +
              'within one DFSP is booked on its own ledger, not sent through the clearing network (or is this the ' +
              "sender's DFSP by mistake?)"
          : `no DFSP in the directory serves "${receiver}"`,
        { metadata: { receiver } },
      );
    }
    return entry;
  }

  /** The remote SPSP server's failure, as this service reports it. */
  function receiverDfspError(error: unknown, entry: DirectoryEntry): SpspError {
    if (!(error instanceof RemoteError)) throw error;
    if (error.kind === 'unavailable') {
      return new SpspError(
        'RECEIVER_DFSP_UNAVAILABLE',
        `the SPSP server of ${entry.dfsp} did not answer: ${error.message}`,
        {
          metadata: { dfsp: entry.dfsp },
          cause: error,
        },
      );
    }
    const passedOn: SpspErrorReason[] = [
      'RECEIVER_NOT_FOUND',
      'RECEIVER_DISABLED',
      'AMOUNT_BELOW_MINIMUM',
      'AMOUNT_ABOVE_MAXIMUM',
    ];
    const reason = passedOn.find((candidate) => candidate === error.reason) ?? 'RECEIVER_DFSP_REFUSED';
    return new SpspError(reason, error.message, {
      metadata: {
        ...error.metadata,
        dfsp: entry.dfsp,
        ...(reason === 'RECEIVER_DFSP_REFUSED' ? { remote_reason: error.reason } : {}),
      },
      cause: error,
    });
  }

  function checkLimits(receiver: ReceiverInfo, destinationAmount: bigint): void {
    const metadata = {
      receiver: receiver.identifier,
      minimum_amount: receiver.minimumAmount.toString(),
      maximum_amount: receiver.maximumAmount?.toString() ?? '',
      destination_amount: destinationAmount.toString(),
    };
    if (destinationAmount < receiver.minimumAmount) {
      throw new SpspError(
        'AMOUNT_BELOW_MINIMUM',
        `${receiver.identifier} accepts at least ${receiver.minimumAmount} minor units of ${receiver.currencyCode}; the payment delivers ${destinationAmount}`,
        { metadata },
      );
    }
    if (receiver.maximumAmount !== null && destinationAmount > receiver.maximumAmount) {
      throw new SpspError(
        'AMOUNT_ABOVE_MAXIMUM',
        `${receiver.identifier} accepts at most ${receiver.maximumAmount} minor units of ${receiver.currencyCode}; the payment delivers ${destinationAmount}`,
        { metadata },
      );
    }
  }

  /** Query the receiver, then quote through our connector. */
  async function price(
    input: QuoteInput & { fixedAmount: FixedAmount },
  ): Promise<{ entry: DirectoryEntry; quote: PaymentQuote }> {
    const entry = resolveDfsp(input.receiver);
    let receiver: ReceiverInfo;
    try {
      receiver = await remote.query(entry.spspEndpoint, input.receiver);
    } catch (error) {
      throw receiverDfspError(error, entry);
    }
    if (input.fixedAmount === 'destination') checkLimits(receiver, input.amount);
    let connectorQuote;
    try {
      connectorQuote = await quoter.quote({
        sourceLedgerPrefix: ledgerInfo.ilpPrefix,
        destinationAddress: receiver.ilpAddress,
        fixedAmount: input.fixedAmount,
        amount: input.amount,
        destinationHoldMs: receiver.destinationHoldMs,
      });
    } catch (error) {
      if (!(error instanceof RemoteError)) throw error;
      const ilpCode = error.metadata.ilp_code;
      if (error.kind === 'unavailable' && ilpCode === undefined) {
        throw new SpspError('CONNECTOR_UNAVAILABLE', `our connector did not answer: ${error.message}`, {
          cause: error,
        });
      }
      throw new SpspError('QUOTE_FAILED', `the connector cannot quote the payment: ${error.message}`, {
        metadata: { ...(ilpCode ? { ilp_code: ilpCode } : {}), connector_reason: error.reason },
        cause: error,
      });
    }
    if (input.fixedAmount === 'source') checkLimits(receiver, connectorQuote.destinationAmount);
    return {
      entry,
      quote: {
        receiver,
        fixedAmount: input.fixedAmount,
        sourceAmount: connectorQuote.sourceAmount,
        sourceCurrencyCode: ledgerInfo.currencyCode,
        sourceScale: ledgerInfo.scale,
        destinationAmount: connectorQuote.destinationAmount,
        connectorAccount: connectorQuote.connectorAccount,
        sourceHoldMs: connectorQuote.sourceHoldMs,
        destinationHoldMs: connectorQuote.destinationHoldMs,
        connectors: connectorQuote.connectors,
      },
    };
  }

  async function quote(input: QuoteInput): Promise<PaymentQuote> {
    const violations = new Violations();
    validateReceiver(violations, input.receiver);
    validateAmount(violations, input);
    violations.throwIfAny();
    return (await price({ ...input, fixedAmount: input.fixedAmount! })).quote;
  }

  /**
   * A refused prepare as this service reports it. The sender's account is not read beforehand:
   * the ledger checks it when preparing (it exists, this service's principal owns it, it is
   * enabled, it covers the amount), and a refused prepare fails the payment as a failed check
   * would have, with no money held.
   */
  function prepareRefusal(error: RemoteError, senderAccount: string): SpspError {
    const metadata = { ledger_reason: error.reason, ...error.metadata };
    const aboutSender = error.metadata.account === senderAccount;
    switch (error.reason) {
      case 'INSUFFICIENT_FUNDS':
        return new SpspError('INSUFFICIENT_FUNDS', error.message, { metadata });
      case 'ACCOUNT_NOT_FOUND':
        return new SpspError(aboutSender ? 'SENDER_ACCOUNT_NOT_FOUND' : 'TRANSFER_REFUSED', error.message, {
          metadata,
        });
      case 'ACCOUNT_DISABLED':
        return new SpspError(aboutSender ? 'SENDER_ACCOUNT_DISABLED' : 'TRANSFER_REFUSED', error.message, { metadata });
      case 'PERMISSION_DENIED':
        return new SpspError('PERMISSION_DENIED', error.message, { metadata });
      default:
        return new SpspError('TRANSFER_REFUSED', `the ledger refused the transfer: ${error.message}`, { metadata });
    }
  }

  /**
   * Why a sender account this service does not own cannot pay (a rare path, so the account is
   * read only here): it does not exist, or another principal owns it. Either way nothing is sent.
   */
  async function notOwnedRefusal(name: string): Promise<SpspError> {
    const notOwned = new SpspError(
      'PERMISSION_DENIED',
      `this service's principal "${dependencies.principal}" does not own account "${name}"`,
      { metadata: { account: name } },
    );
    let account: Awaited<ReturnType<typeof ledger.getAccount>>;
    try {
      account = await ledger.getAccount(name);
    } catch (error) {
      // The ledger shows an account only to its owner.
      if (error instanceof RemoteError && error.reason === 'PERMISSION_DENIED') return notOwned;
      return new SpspError('LEDGER_UNAVAILABLE', `cannot read account "${name}": ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!account) {
      return new SpspError('SENDER_ACCOUNT_NOT_FOUND', `account "${name}" does not exist on ${ledgerInfo.ilpPrefix}`, {
        metadata: { account: name },
      });
    }
    return notOwned;
  }

  /**
   * Fails the payment's attempt — only if its recorded transfer is still `transferId` (null: none
   * recorded), so a decision made from an older read (the reconciler judging an attempt
   * abandoned while it was recording and sending its transfer) never fails a payment whose
   * transfer may execute.
   */
  async function recordFailure(payment: Payment, transferId: string | null, error: SpspError): Promise<void> {
    await store.markFailed(
      payment.id,
      payment.attempt,
      transferId,
      { reason: error.reason, message: error.message, ilpCode: error.options.metadata?.ilp_code ?? null },
      now(),
    );
    notifier.notify(payment.id);
  }

  /** One attempt of a pending payment, up to sending its transfer. */
  async function runAttempt(payment: Payment): Promise<void> {
    let request: PaymentRequestInfo;
    let paymentQuote: PaymentQuote;
    try {
      const priced = await price(payment);
      paymentQuote = priced.quote;
      if (payment.maximumSourceAmount !== null && paymentQuote.sourceAmount > payment.maximumSourceAmount) {
        throw new SpspError(
          'SOURCE_AMOUNT_ABOVE_MAXIMUM',
          `the payment costs ${paymentQuote.sourceAmount}, more than the maximum of ${payment.maximumSourceAmount} (minor units of ${ledgerInfo.currencyCode})`,
          {
            metadata: {
              source_amount: paymentQuote.sourceAmount.toString(),
              maximum_source_amount: payment.maximumSourceAmount.toString(),
            },
          },
        );
      }
      try {
        request = await remote.setupPayment(priced.entry.spspEndpoint, {
          receiver: payment.receiver,
          destinationAmount: paymentQuote.destinationAmount,
          data: payment.data,
        });
      } catch (error) {
        throw receiverDfspError(error, priced.entry);
      }
      checkPaymentRequest(request, paymentQuote, now());
      // The stream must cover the sender's account before the transfer exists, or its outcome
      // could pass unseen.
      try {
        await dependencies.follow(payment.senderAccount);
      } catch (error) {
        if (error instanceof AccountNotOwnedError) throw await notOwnedRefusal(payment.senderAccount);
        throw new SpspError(
          'LEDGER_UNAVAILABLE',
          `cannot follow account "${payment.senderAccount}": ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    } catch (error) {
      if (error instanceof SpspError) await recordFailure(payment, null, error);
      throw error;
    }

    const transferId = randomUUID();
    const expiresAt = new Date(now().getTime() + paymentQuote.sourceHoldMs);
    const recorded = await store.recordAttempt(
      payment.id,
      payment.attempt,
      {
        sourceAmount: paymentQuote.sourceAmount,
        destinationAmount: request.destinationAmount,
        destinationCurrencyCode: request.receiver.currencyCode,
        destinationScale: request.receiver.scale,
        destinationAddress: request.destinationAddress,
        connectorAccount: paymentQuote.connectorAccount,
        connectors: paymentQuote.connectors,
        transferId,
        executionCondition: request.executionCondition,
        ilpPacket: request.ilpPacket,
        expiresAt,
      },
      now(),
    );
    // Only the reconciler, judging the attempt abandoned, can have moved the payment meanwhile.
    if (!recorded) return;
    notifier.notify(payment.id);
    try {
      const transfer = await ledger.prepareTransfer({
        transferId,
        debitAccount: payment.senderAccount,
        creditAccount: paymentQuote.connectorAccount,
        amount: paymentQuote.sourceAmount,
        executionCondition: request.executionCondition,
        expiresAt,
        ilpPacket: request.ilpPacket,
      });
      await applyTransfer(transfer, null);
    } catch (error) {
      if (error instanceof RemoteError && error.kind === 'refused') {
        const refusal = prepareRefusal(error, payment.senderAccount);
        await recordFailure(payment, transferId, refusal);
        throw refusal;
      }
      // No answer: the transfer may exist. Its notification, or the reconciler once it is due to
      // have expired, settles the payment.
      logger.warn({ paymentId: payment.id, transferId, err: error }, 'prepare unconfirmed; following the ledger');
    }
  }

  /**
   * Transfers whose prepare this process is recording or has recorded, until the other word of
   * it arrives: the prepare's answer and the ledger's notification both say the transfer is
   * prepared, and whichever comes second only waits for the first one's write instead of
   * repeating it. Only ever a shortcut: once that write is done a payment never returns to
   * pending under this transfer, so the second write could change nothing. Bounded: the oldest
   * go first.
   */
  const preparesRecorded = new Map<string, Promise<void>>();
  const preparesRecordedMax = 10_000;

  /** Records that `transfer` is prepared, once for both of its confirmations. */
  async function recordPrepared(transfer: LedgerTransferView, at: Date): Promise<void> {
    const first = preparesRecorded.get(transfer.id);
    if (first) {
      preparesRecorded.delete(transfer.id);
      return first;
    }
    const recording = store.markPrepared(transfer.id, transfer.preparedAt ?? at, at).then((moved) => {
      if (moved) notifier.notify(moved.id);
    });
    if (preparesRecorded.size >= preparesRecordedMax) {
      preparesRecorded.delete(preparesRecorded.keys().next().value!);
    }
    preparesRecorded.set(transfer.id, recording);
    try {
      await recording;
    } catch (error) {
      // Not recorded after all: whoever comes next writes it again.
      if (preparesRecorded.get(transfer.id) === recording) preparesRecorded.delete(transfer.id);
      throw error;
    }
  }

  /**
   * Records what the ledger says about a payment's transfer. Each transition is one conditional
   * update that names the payment it moved: a transfer of no payment, or of a payment already
   * past that state, changes nothing.
   */
  async function applyTransfer(transfer: LedgerTransferView, fulfillment: Buffer | null): Promise<void> {
    const at = now();
    if (transfer.state === 'prepared') return recordPrepared(transfer, at);
    preparesRecorded.delete(transfer.id);
    if (transfer.state === 'executed') {
      let proof = fulfillment;
      if (proof === null) {
        // Asked of the ledger only for an open payment (the reconciler's case).
        const payment = await store.findPaymentByTransfer(transfer.id);
        if (!payment || isFinalPaymentState(payment.state)) return;
        proof = await ledger.getFulfillment(transfer.id);
      }
      const moved = await store.markExecuted(transfer.id, proof, at);
      if (!moved) return;
      if (moved.executionCondition && !isFulfillmentOf(proof, moved.executionCondition)) {
        // The ledger checked it; a mismatch here means a bug or a tampered record, never money.
        logger.error({ paymentId: moved.id, transferId: transfer.id }, 'fulfillment does not match the condition');
      }
      logger.info({ paymentId: moved.id, transferId: transfer.id }, 'payment executed');
      notifier.notify(moved.id, moved.payment);
      return;
    }
    const expired = transfer.rejectionReason === 'expired';
    const ilpError = transfer.ilpError ?? expiryError(transfer, at, expired);
    const moved = await store.markRejected(transfer.id, expired, ilpError, at);
    if (!moved) return;
    logger.info(
      { paymentId: moved.id, transferId: transfer.id, code: ilpError.code, triggeredBy: ilpError.triggeredBy },
      expired ? 'payment expired' : 'payment rejected',
    );
    notifier.notify(moved.id, moved.payment);
  }

  function expiryError(transfer: LedgerTransferView, at: Date, expired: boolean): IlpError {
    return {
      code: expired ? 'R00' : 'T00',
      name: expired ? 'Transfer Timed Out' : 'Internal Error',
      message: expired
        ? `transfer ${transfer.id} expired at ${transfer.expiresAt?.toISOString() ?? 'its expiry'} before it was fulfilled`
        : `transfer ${transfer.id} was rejected without an ILP error`,
      triggeredBy: ledgerInfo.ilpPrefix.replace(/\.$/, ''),
      forwardedBy: [],
      triggeredAt: at,
      data: Buffer.alloc(0),
    };
  }

  function isOverdue(payment: Payment, at: Date): boolean {
    if (payment.transferId === null) return at.getTime() - payment.updatedAt.getTime() > timing.abandonedAfterMs;
    return payment.expiresAt !== null && at.getTime() > payment.expiresAt.getTime() + timing.overdueGraceMs;
  }

  /** Asks the ledger directly about a payment whose outcome is overdue. */
  async function reconcile(payment: Payment): Promise<void> {
    const at = now();
    if (payment.transferId === null) {
      if (!isOverdue(payment, at)) return;
      await recordFailure(
        payment,
        null,
        new SpspError(
          'PAYMENT_INTERRUPTED',
          'the attempt stopped before its transfer was sent; no money moved, Pay again with the same id to retry',
        ),
      );
      return;
    }
    let transfer: LedgerTransferView | undefined;
    try {
      transfer = await ledger.getTransfer(payment.transferId);
    } catch (error) {
      logger.warn({ paymentId: payment.id, err: error }, 'cannot reconcile the payment yet: ledger unavailable');
      return;
    }
    if (transfer === undefined) {
      // Past its expiry the ledger would refuse to prepare it, so it never will exist.
      if (isOverdue(payment, at)) {
        await recordFailure(
          payment,
          payment.transferId,
          new SpspError(
            'LEDGER_UNAVAILABLE',
            'the ledger never confirmed the transfer and it does not exist; no money moved',
          ),
        );
      }
      return;
    }
    await applyTransfer(transfer, null);
  }

  function failureError(payment: Payment): SpspError {
    const failure = payment.failure!;
    const reason: SpspErrorReason = isSpspErrorReason(failure.reason) ? failure.reason : 'PAYMENT_INTERRUPTED';
    return new SpspError(reason, failure.message, {
      metadata: { payment_id: payment.id, ...(failure.ilpCode ? { ilp_code: failure.ilpCode } : {}) },
    });
  }

  /**
   * Waits for the payment's final state; FAILED comes back as its error. Gives up (with
   * LEDGER_UNAVAILABLE, the payment left as it is) when the ledger cannot tell the outcome long
   * after the transfer's expiry: the caller may repeat Pay or watch the payment.
   */
  async function awaitOutcome(paymentId: string): Promise<Payment> {
    let final: Payment | undefined;
    for (;;) {
      // A final state handed over by the wake-up needs no second read.
      const payment = final ?? (await store.findPayment(paymentId));
      if (!payment) throw new SpspError('PAYMENT_NOT_FOUND', `payment ${paymentId} does not exist`);
      if (payment.state === 'failed') throw failureError(payment);
      if (isFinalPaymentState(payment.state)) return payment;
      const at = now();
      if (isOverdue(payment, at)) await reconcile(payment);
      const due = payment.expiresAt ?? new Date(payment.updatedAt.getTime() + timing.abandonedAfterMs);
      if (at.getTime() > due.getTime() + timing.outcomeWaitMs) {
        throw new SpspError(
          'LEDGER_UNAVAILABLE',
          `the outcome of payment ${paymentId} is not known yet (the ledger cannot tell); repeat Pay with the same id or watch it`,
          { metadata: { payment_id: paymentId } },
        );
      }
      final = await notifier.wait(paymentId, timing.pollIntervalMs);
    }
  }

  function sameOrder(recorded: PaymentOrder, order: PaymentOrder): boolean {
    return (
      recorded.senderAccount === order.senderAccount &&
      recorded.receiver === order.receiver &&
      recorded.fixedAmount === order.fixedAmount &&
      recorded.amount === order.amount &&
      recorded.maximumSourceAmount === order.maximumSourceAmount &&
      recorded.data.equals(order.data)
    );
  }

  async function pay(input: PayInput): Promise<Payment> {
    const violations = new Violations();
    if (!isUuid(input.paymentId)) violations.add('payment_id', 'must be a UUID');
    if (!accountNamePattern.test(input.senderAccount))
      violations.add('sender_account', 'must match [a-zA-Z0-9_-]{1,86}');
    validateReceiver(violations, input.receiver);
    validateAmount(violations, input);
    if (input.data.length > maximumDataBytes) violations.add('data', `must be at most ${maximumDataBytes} bytes`);
    if (input.maximumSourceAmount !== undefined) {
      if (input.fixedAmount !== 'destination') {
        violations.add('maximum_source_amount', 'applies only with a destination_amount');
      } else if (input.maximumSourceAmount <= 0n || input.maximumSourceAmount > maximumPaymentAmount) {
        violations.add('maximum_source_amount', 'must be from 1 to 2^63 - 1 minor units');
      }
    }
    violations.throwIfAny();
    const order: PaymentOrder = {
      id: input.paymentId.toLowerCase(),
      senderAccount: input.senderAccount,
      receiver: input.receiver,
      fixedAmount: input.fixedAmount!,
      amount: input.amount,
      data: input.data,
      maximumSourceAmount: input.maximumSourceAmount ?? null,
    };
    for (;;) {
      const result = await store.insertPayment(
        order,
        { currencyCode: ledgerInfo.currencyCode, scale: ledgerInfo.scale },
        now(),
      );
      if (result.inserted) {
        await runAttempt(result.payment);
        return awaitOutcome(order.id);
      }
      const existing = result.existing;
      if (!sameOrder(existing, order)) {
        throw new SpspError('ALREADY_EXISTS', `payment ${order.id} exists with different content`, {
          metadata: { payment_id: order.id },
        });
      }
      if (existing.state !== 'failed') return awaitOutcome(order.id);
      // No money moved in a failed attempt: the same Pay tries again. One caller wins the retry;
      // the others go round and wait for its outcome.
      if (await store.claimRetry(order.id, existing.attempt, now())) {
        await runAttempt({
          ...existing,
          state: 'pending',
          attempt: existing.attempt + 1,
          failure: null,
          transferId: null,
        });
        return awaitOutcome(order.id);
      }
    }
  }

  async function getPayment(paymentId: string): Promise<Payment> {
    if (!isUuid(paymentId)) {
      const violations = new Violations();
      violations.add('payment_id', 'must be a UUID');
      violations.throwIfAny();
    }
    const payment = await store.findPayment(paymentId.toLowerCase());
    if (!payment)
      throw new SpspError('PAYMENT_NOT_FOUND', `payment ${paymentId} does not exist`, {
        metadata: { payment_id: paymentId },
      });
    return payment;
  }

  async function* watchPayment(paymentId: string, signal: AbortSignal): AsyncGenerator<Payment> {
    let payment = await getPayment(paymentId);
    yield payment;
    while (!isFinalPaymentState(payment.state) && !signal.aborted) {
      const final = await notifier.wait(payment.id, timing.pollIntervalMs, signal);
      const next = final ?? (await store.findPayment(payment.id));
      if (!next) return;
      if (next.state !== payment.state || next.updatedAt.getTime() !== payment.updatedAt.getTime()) {
        payment = next;
        yield payment;
      }
    }
  }

  async function applyNotification(notification: Extract<LedgerNotification, { kind: 'transfer' }>): Promise<void> {
    await applyTransfer(notification.transfer, notification.fulfillment);
  }

  async function reconcileOverdue(): Promise<number> {
    const at = now();
    const payments = await store.findOverduePayments(
      new Date(at.getTime() - timing.overdueGraceMs),
      new Date(at.getTime() - timing.abandonedAfterMs),
      100,
    );
    for (const payment of payments) await reconcile(payment);
    return payments.length;
  }

  return { quote, pay, getPayment, watchPayment, applyNotification, reconcileOverdue };
}

/**
 * Checks the receiver's payment request against what we asked for and were quoted, so that a
 * faulty or hostile SPSP server cannot make us pay for something else.
 */
function checkPaymentRequest(request: PaymentRequestInfo, quote: PaymentQuote, at: Date): void {
  const problems: string[] = [];
  if (request.destinationAmount !== quote.destinationAmount) {
    problems.push(`it is for ${request.destinationAmount}, we asked for ${quote.destinationAmount}`);
  }
  if (!request.destinationAddress.startsWith(`${quote.receiver.ilpAddress}.`)) {
    problems.push(`its address ${request.destinationAddress} is not under ${quote.receiver.ilpAddress}`);
  }
  if (request.executionCondition.length !== 32) problems.push('its condition is not 32 bytes');
  try {
    const packet = deserializeIlpPayment(request.ilpPacket);
    if (packet.account !== request.destinationAddress || packet.amount !== request.destinationAmount) {
      problems.push('its packet is for another address or amount');
    }
  } catch (error) {
    problems.push(`its packet cannot be read: ${(error as Error).message}`);
  }
  if (problems.length > 0) {
    throw new SpspError(
      'RECEIVER_DFSP_REFUSED',
      `the receiver's payment request does not match: ${problems.join('; ')}`,
    );
  }
  if (request.expiresAt.getTime() < at.getTime() + quote.sourceHoldMs) {
    throw new SpspError(
      'PAYMENT_REQUEST_EXPIRES_TOO_SOON',
      `the payment request expires at ${request.expiresAt.toISOString()}, before the payment could complete (${quote.sourceHoldMs} ms)`,
    );
  }
}
