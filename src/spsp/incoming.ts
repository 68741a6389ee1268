/**
 * The receiver: decides, from a prepared transfer alone, whether to fulfil it or reject it, then
 * does so on the ledger and records what happened. The decision is a pure function (tested by
 * table); the handler is the only part that talks to the ledger and the database.
 */
import { deserializeIlpPayment, ILP_ERROR_NAMES, verifyIncomingPayment, type IlpErrorCode } from '../ilp';
import type { Logger } from '../platform/logger';
import type { IlpError, IncomingPayment } from './model';
import { RemoteError, type LedgerTransferView, type SpspLedger } from './ports';
import type { ReceiverBook } from './receivers';
import type { SpspStore } from './store';

/** What the receiver does with a prepared transfer crediting one of its accounts. */
export type IncomingDecision =
  | { action: 'fulfil'; fulfillment: Buffer; receiver: string }
  | { action: 'reject'; code: IlpErrorCode; message: string; receiver: string | null }
  | { action: 'ignore'; why: string };

/**
 * Decides about `transfer`, which credits an account the SPSP principal owns. In order:
 * a transfer not prepared or without condition needs nothing; an account that is no receiver
 * refuses with F02 Unreachable; a disabled receiver with F07 Cannot Receive; then the packet is
 * checked as {@link verifyIncomingPayment} documents (F01, F02, F06, R00, F04, F05).
 */
export function decideIncomingTransfer(input: {
  transfer: Pick<LedgerTransferView, 'state' | 'creditAccount' | 'amount' | 'executionCondition' | 'ilpPacket'>;
  receivers: ReceiverBook;
  secret: Buffer;
  now: Date;
}): IncomingDecision {
  const { transfer, receivers } = input;
  if (transfer.state !== 'prepared') return { action: 'ignore', why: `the transfer is ${transfer.state}` };
  if (transfer.executionCondition.length === 0) {
    return { action: 'ignore', why: 'the transfer has no condition and executed at once' };
  }
  const receiver = receivers.byLedgerAccount(transfer.creditAccount);
  if (receiver === undefined) {
    return {
      action: 'reject',
      code: 'F02',
      message: `account ${transfer.creditAccount} does not receive payments`,
      receiver: null,
    };
  }
  if (receiver.disabled) {
    return {
      action: 'reject',
      code: 'F07',
      message: `${receivers.identifier(receiver)} cannot receive payments`,
      receiver: receiver.name,
    };
  }
  const verdict = verifyIncomingPayment({
    secret: input.secret,
    receiverAddress: receivers.address(receiver),
    packet: transfer.ilpPacket,
    condition: transfer.executionCondition,
    amount: transfer.amount,
    now: input.now,
  });
  if ('errorCode' in verdict) {
    return { action: 'reject', code: verdict.errorCode, message: verdict.message, receiver: receiver.name };
  }
  return { action: 'fulfil', fulfillment: verdict.fulfillment, receiver: receiver.name };
}

/** Ledger refusals that settle a transfer's fate: retrying cannot change them. */
const settledReasons = new Set(['TRANSFER_EXPIRED', 'TRANSFER_ALREADY_FINAL', 'TRANSFER_NOT_FOUND']);
/** ...and for a rejection, also ALREADY_EXISTS: rejected already, with another ILP error (an earlier decision). */
const settledRejectReasons = new Set([...settledReasons, 'ALREADY_EXISTS']);

/** Handles prepared transfers to this DFSP's receivers. */
export class IncomingPaymentHandler {
  constructor(
    private readonly dependencies: {
      ledger: Pick<SpspLedger, 'fulfillTransfer' | 'rejectTransfer' | 'getTransfer'>;
      store: Pick<SpspStore, 'recordIncoming' | 'findIncoming'>;
      receivers: ReceiverBook;
      secret: Buffer;
      now: () => Date;
      logger: Logger;
    },
  ) {}

  /**
   * Fulfils or rejects `transfer` and records the outcome. Idempotent: a replayed notification
   * finds the record (or the ledger's final state) and changes nothing. Throws only when the
   * ledger could not be reached, so that the caller retries.
   */
  async handlePrepared(transfer: LedgerTransferView): Promise<void> {
    const { ledger, store, receivers, logger } = this.dependencies;
    if (await store.findIncoming(transfer.id)) return;
    const now = this.dependencies.now();
    const decision = decideIncomingTransfer({ transfer, receivers, secret: this.dependencies.secret, now });
    if (decision.action === 'ignore') return;
    const packet = readPacket(transfer.ilpPacket);
    const record: IncomingPayment = {
      transferId: transfer.id,
      receiver: decision.receiver,
      account: transfer.creditAccount,
      amount: transfer.amount,
      destinationAddress: packet?.account ?? null,
      packetAmount: packet?.amount ?? null,
      data: packet?.data ?? Buffer.alloc(0),
      executionCondition: transfer.executionCondition,
      state: 'executed',
      ilpErrorCode: null,
      ilpErrorMessage: null,
      receivedAt: now,
    };
    if (decision.action === 'fulfil') {
      try {
        await ledger.fulfillTransfer(transfer.id, decision.fulfillment);
        logger.info(
          { transferId: transfer.id, receiver: decision.receiver, amount: transfer.amount.toString() },
          'payment received',
        );
      } catch (error) {
        if (!(error instanceof RemoteError) || error.kind !== 'refused' || !settledReasons.has(error.reason))
          throw error;
        // Too late (expired) or already final: record what the ledger says happened.
        const current = await ledger.getTransfer(transfer.id);
        if (current?.state !== 'executed') {
          record.state = 'expired';
          logger.warn({ transferId: transfer.id, reason: error.reason }, 'incoming transfer could not be fulfilled');
        }
      }
    } else {
      const ilpError: IlpError = {
        code: decision.code,
        name: ILP_ERROR_NAMES[decision.code],
        message: decision.message,
        triggeredBy: receiverAddressOf(transfer, receivers),
        forwardedBy: [],
        triggeredAt: now,
        data: Buffer.alloc(0),
      };
      record.state = 'rejected';
      record.ilpErrorCode = decision.code;
      record.ilpErrorMessage = decision.message;
      try {
        await ledger.rejectTransfer(transfer.id, ilpError);
        logger.info(
          { transferId: transfer.id, code: decision.code, why: decision.message },
          'incoming payment rejected',
        );
      } catch (error) {
        if (!(error instanceof RemoteError) || error.kind !== 'refused' || !settledRejectReasons.has(error.reason))
          throw error;
        // Final already (an earlier decision of ours before a restart, or its expiry): record
        // what the ledger says happened, not what was decided now.
        const current = await ledger.getTransfer(transfer.id);
        if (current?.state === 'executed') {
          record.state = 'executed';
          record.ilpErrorCode = null;
          record.ilpErrorMessage = null;
        } else if (current?.state === 'rejected' && current.rejectionReason === 'cancelled' && current.ilpError) {
          record.ilpErrorCode = current.ilpError.code;
          record.ilpErrorMessage = current.ilpError.message;
        } else if (current?.state === 'rejected' && current.rejectionReason === 'expired') {
          // Expired, not rejected by us: no ILP error of ours is its outcome.
          record.state = 'expired';
          record.ilpErrorCode = null;
          record.ilpErrorMessage = null;
        }
        logger.info(
          { transferId: transfer.id, reason: error.reason, state: record.state },
          'incoming transfer was final already',
        );
      }
    }
    // The time of the record, not of the decision: the history pages in this order, and records
    // then arrive nearly in it (a decision may wait on the ledger for a while).
    record.receivedAt = this.dependencies.now();
    await store.recordIncoming(record);
  }
}

function readPacket(packet: Buffer) {
  try {
    return deserializeIlpPayment(packet);
  } catch {
    return undefined;
  }
}

function receiverAddressOf(transfer: Pick<LedgerTransferView, 'creditAccount'>, receivers: ReceiverBook): string {
  return `${receivers.ledgerPrefix}${transfer.creditAccount}`;
}
