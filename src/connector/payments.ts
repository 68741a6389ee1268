/**
 * The payment state machine: how a notification from either ledger moves a payment. Pure, so
 * that replays, duplicates and out-of-order notifications are tested as a table: a notification
 * that does not apply to the payment's state changes nothing.
 *
 * Side of a notification: a transfer crediting the connector's account is an incoming one,
 * debiting it an outgoing one. The payment of an incoming transfer has the derived id
 * (ids.ts), the payment of an outgoing transfer has the transfer's own id.
 */
import { isFulfillmentOf } from '../ilp';
import { int8Maximum } from '../ledger/model';
import { connectorIlpError, relayedIlpError } from './errors';
import { decideForward, type ForwardingContext } from './forwarding';
import { outgoingTransferId } from './ids';
import type { ConnectorSettings, LedgerEndpoint, Payment, PaymentState, TransferNotification } from './model';
import { createStaticRateSource } from './rates';
import { createRoutingTable } from './routing';

/**
 * How long before the incoming transfer's expiry a pass-back's or rejection's lease ends at the
 * latest: a few of the poller's rounds (200 ms each by default).
 */
export const settleLeaseMarginMs = 600;

/** What the state machine needs besides the payment and the notification. */
export interface TransitionContext extends ForwardingContext {
  connectorName: string;
  /** A fresh job is left to the process that created it for this long before the poller retries it. */
  jobLeaseMs: number;
}

/** The context of a connector with `settings`. */
export function createTransitionContext(
  settings: ConnectorSettings,
  options: {
    jobLeaseMs: number;
    maxHoldMs?: (ledgerPrefix: string) => number;
    maxAmount?: (ledgerPrefix: string) => bigint;
  },
): TransitionContext {
  return {
    connectorName: settings.name,
    connectorAddress: settings.ilpAddress,
    ledgers: new Map(settings.ledgers.map((ledger) => [ledger.prefix, ledger])),
    routing: createRoutingTable(settings.ledgers, settings.routes),
    rates: createStaticRateSource(settings.rates),
    spread: settings.spread,
    messageWindowMs: settings.messageWindowMs,
    maxHoldMs: options.maxHoldMs ?? (() => settings.maxHoldMs),
    maxAmount: options.maxAmount ?? (() => int8Maximum),
    jobLeaseMs: options.jobLeaseMs,
  };
}

/** The outcome of one notification. */
export interface Transition {
  /** The payment after the notification (undefined: there is none and none was created). */
  payment: Payment | undefined;
  /** Whether the payment must be written. */
  changed: boolean;
  /** Something an operator should read in the log, e.g. an outgoing transfer the connector does not know. */
  note?: { level: 'info' | 'warn' | 'error'; message: string };
}

/** Which side of the connector a notification is on, and the id of the payment it belongs to. */
export function classifyNotification(
  notification: TransferNotification,
  ledger: LedgerEndpoint,
  connectorName: string,
): { side: 'incoming' | 'outgoing'; paymentId: string } | undefined {
  const { transfer } = notification;
  if (transfer.creditAccount === ledger.account) {
    return { side: 'incoming', paymentId: outgoingTransferId(connectorName, ledger.prefix, transfer.id) };
  }
  if (transfer.debitAccount === ledger.account) return { side: 'outgoing', paymentId: transfer.id.toLowerCase() };
  return undefined;
}

const unchanged = (payment: Payment | undefined, note?: Transition['note']): Transition => ({
  payment,
  changed: false,
  note,
});

function moveTo(payment: Payment, state: PaymentState, now: Date, changes: Partial<Payment> = {}): Transition {
  return { payment: { ...payment, ...changes, state, updatedAt: now }, changed: true };
}

/**
 * Applies `notification` (from the ledger `ledger`) to `payment` (undefined when not recorded yet).
 * `side` is the notification's classification, when the caller has it already (it hashes).
 */
export function applyNotification(
  payment: Payment | undefined,
  notification: TransferNotification,
  ledger: LedgerEndpoint,
  context: TransitionContext,
  now: Date,
  side = classifyNotification(notification, ledger, context.connectorName),
): Transition {
  if (!side) return unchanged(payment);
  const { transfer } = notification;
  const lease = new Date(now.getTime() + context.jobLeaseMs);
  // A pass-back or a rejection must happen before the incoming transfer expires: its lease ends
  // in time for the poller to run it again (should this process's own run be lost) before then.
  const settleLease = (incomingExpiresAt: Date) =>
    new Date(Math.max(now.getTime(), Math.min(lease.getTime(), incomingExpiresAt.getTime() - settleLeaseMarginMs)));

  if (side.side === 'incoming') {
    switch (notification.type) {
      case 'prepared': {
        if (payment) return unchanged(payment);
        const decision = decideForward(transfer, ledger.prefix, context, now);
        const created: Payment = {
          id: side.paymentId,
          incomingLedgerPrefix: ledger.prefix,
          incomingTransferId: transfer.id.toLowerCase(),
          incomingAmount: transfer.amount,
          incomingExpiresAt: transfer.expiresAt ?? now,
          executionCondition: transfer.executionCondition,
          ilpPacket: transfer.ilpPacket,
          traceParent: transfer.traceParent,
          outgoing: decision.kind === 'forward' ? decision.outgoing : null,
          state: decision.kind === 'forward' ? 'forwarding' : decision.kind === 'reject' ? 'rejecting' : 'rejected',
          fulfillment: null,
          ilpError: decision.kind === 'reject' ? decision.error : null,
          attempts: 0,
          nextAttemptAt: decision.kind === 'reject' ? settleLease(transfer.expiresAt ?? now) : lease,
          lastError: null,
          createdAt: now,
          updatedAt: now,
        };
        return { payment: created, changed: true };
      }
      case 'executed':
        if (!payment) return unchanged(payment);
        if (payment.state === 'fulfilling') return moveTo(payment, 'fulfilled', now);
        if (payment.state === 'lost') {
          return {
            ...moveTo(payment, 'fulfilled', now),
            note: {
              level: 'warn',
              message: 'incoming transfer executed after its pass-back was given up: no money lost',
            },
          };
        }
        return unchanged(payment);
      case 'rejected':
        if (!payment) return unchanged(payment);
        if (payment.state === 'rejecting' || payment.state === 'forwarding') return moveTo(payment, 'rejected', now);
        return unchanged(payment);
    }
  }

  if (!payment) {
    return unchanged(payment, {
      level: notification.type === 'executed' ? 'error' : 'warn',
      message: `an outgoing transfer the connector did not prepare was ${notification.type}`,
    });
  }
  switch (notification.type) {
    case 'prepared':
      return payment.state === 'forwarding' ? moveTo(payment, 'prepared', now) : unchanged(payment);
    case 'executed': {
      if (payment.state === 'fulfilling' || payment.state === 'fulfilled' || payment.state === 'lost') {
        return unchanged(payment);
      }
      const fulfillment = notification.fulfillment;
      // The ledger checked the fulfillment against the same condition; a mismatch is a ledger bug.
      if (!fulfillment || !isFulfillmentOf(fulfillment, payment.executionCondition)) {
        return unchanged(payment, {
          level: 'error',
          message: 'outgoing transfer executed without a fulfillment of its condition; not passing it back',
        });
      }
      return moveTo(payment, 'fulfilling', now, {
        fulfillment,
        attempts: 0,
        nextAttemptAt: settleLease(payment.incomingExpiresAt),
        lastError: null,
      });
    }
    case 'rejected': {
      if (payment.state !== 'forwarding' && payment.state !== 'prepared') return unchanged(payment);
      const error =
        transfer.rejectionReason === 'cancelled' && transfer.ilpError
          ? relayedIlpError(transfer.ilpError, context.connectorAddress)
          : connectorIlpError(
              'R00',
              `the outgoing transfer on ${ledger.prefix} expired before it was fulfilled`,
              context.connectorAddress,
              now,
            );
      return moveTo(payment, 'rejecting', now, {
        ilpError: error,
        attempts: 0,
        nextAttemptAt: settleLease(payment.incomingExpiresAt),
        lastError: null,
      });
    }
  }
}
