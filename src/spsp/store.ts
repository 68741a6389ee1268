/**
 * The SPSP service's records, through MikroORM: payments sent and their state transitions,
 * payments received, and the ledger cursor. Every transition is a conditional update from the
 * states it may leave, so that concurrent writers (the Pay call, the notification follower, the
 * reconciler, a second replica) can never move a payment backwards or finalise it twice.
 */
import { UniqueConstraintViolationException, type MikroORM } from '@mikro-orm/core';
import type { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ilpErrorFromStored, ilpErrorToStored } from '../ledger/rows';
import type { IlpError, IncomingPayment, Payment, PaymentFailure, PaymentOrder, PaymentState } from './model';
import {
  CursorEntity,
  IncomingPaymentEntity,
  PaymentEntity,
  type IncomingPaymentRow,
  type PaymentRow,
} from './persistence';

/** What a quoted and set-up attempt records before its transfer is sent. */
export interface AttemptDetails {
  sourceAmount: bigint;
  destinationAmount: bigint;
  destinationCurrencyCode: string;
  destinationScale: number;
  destinationAddress: string;
  connectorAccount: string;
  connectors: string[];
  transferId: string;
  executionCondition: Buffer;
  ilpPacket: Buffer;
  expiresAt: Date;
}

/** The result of recording a new payment. */
export type InsertResult = { inserted: true; payment: Payment } | { inserted: false; existing: Payment };

function paymentFromRow(row: PaymentRow): Payment {
  const failure: PaymentFailure | null =
    row.failureReason === null
      ? null
      : { reason: row.failureReason, message: row.failureMessage ?? '', ilpCode: row.failureIlpCode };
  return {
    id: row.id,
    senderAccount: row.senderAccount,
    receiver: row.receiver,
    fixedAmount: row.fixedAmount,
    amount: BigInt(row.amount),
    data: Buffer.from(row.data),
    maximumSourceAmount: row.maximumSourceAmount === null ? null : BigInt(row.maximumSourceAmount),
    state: row.state,
    attempt: row.attempt,
    sourceAmount: row.sourceAmount === null ? null : BigInt(row.sourceAmount),
    sourceCurrencyCode: row.sourceCurrencyCode,
    sourceScale: row.sourceScale,
    destinationAmount: row.destinationAmount === null ? null : BigInt(row.destinationAmount),
    destinationCurrencyCode: row.destinationCurrencyCode,
    destinationScale: row.destinationScale,
    destinationAddress: row.destinationAddress,
    connectorAccount: row.connectorAccount,
    connectors: row.connectors ?? [],
    transferId: row.transferId,
    executionCondition: row.executionCondition ? Buffer.from(row.executionCondition) : null,
    ilpPacket: row.ilpPacket ? Buffer.from(row.ilpPacket) : null,
    fulfillment: row.fulfillment ? Buffer.from(row.fulfillment) : null,
    ilpError: row.ilpError ? ilpErrorFromStored(row.ilpError) : null,
    failure,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    preparedAt: row.preparedAt,
    expiresAt: row.expiresAt,
    finishedAt: row.finishedAt,
  };
}

/** The SPSP service's records. */
export class SpspStore {
  constructor(private readonly orm: MikroORM<PostgreSqlDriver>) {}

  /** A fresh EntityManager per operation: no identity map shared between calls. */
  private em() {
    return this.orm.em.fork();
  }

  /** Records a new pending payment, or returns the one recorded under the same id. */
  async insertPayment(
    order: PaymentOrder,
    source: { currencyCode: string; scale: number },
    now: Date,
  ): Promise<InsertResult> {
    const row: PaymentRow = {
      id: order.id,
      state: 'pending',
      attempt: 1,
      senderAccount: order.senderAccount,
      receiver: order.receiver,
      fixedAmount: order.fixedAmount,
      amount: order.amount,
      maximumSourceAmount: order.maximumSourceAmount,
      data: order.data,
      sourceAmount: null,
      sourceCurrencyCode: source.currencyCode,
      sourceScale: source.scale,
      destinationAmount: null,
      destinationCurrencyCode: null,
      destinationScale: null,
      destinationAddress: null,
      connectorAccount: null,
      connectors: [],
      transferId: null,
      executionCondition: null,
      ilpPacket: null,
      fulfillment: null,
      ilpError: null,
      failureReason: null,
      failureMessage: null,
      failureIlpCode: null,
      createdAt: now,
      updatedAt: now,
      preparedAt: null,
      expiresAt: null,
      finishedAt: null,
    };
    try {
      await this.em().insert(PaymentEntity, row);
      return { inserted: true, payment: paymentFromRow(row) };
    } catch (error) {
      if (!(error instanceof UniqueConstraintViolationException)) throw error;
      const existing = await this.findPayment(order.id);
      if (!existing) throw error;
      return { inserted: false, existing };
    }
  }

  async findPayment(id: string): Promise<Payment | undefined> {
    const row = await this.em().findOne(PaymentEntity, { id }, { disableIdentityMap: true });
    return row ? paymentFromRow(row) : undefined;
  }

  async findPaymentByTransfer(transferId: string): Promise<Payment | undefined> {
    const row = await this.em().findOne(PaymentEntity, { transferId }, { disableIdentityMap: true });
    return row ? paymentFromRow(row) : undefined;
  }

  /**
   * Starts another attempt of a failed payment: back to pending with the attempt number raised
   * and the previous attempt's details cleared. False when another caller got there first.
   */
  async claimRetry(id: string, failedAttempt: number, now: Date): Promise<boolean> {
    const changed = await this.em().nativeUpdate(
      PaymentEntity,
      { id, state: 'failed', attempt: failedAttempt },
      {
        state: 'pending',
        attempt: failedAttempt + 1,
        sourceAmount: null,
        destinationAmount: null,
        destinationCurrencyCode: null,
        destinationScale: null,
        destinationAddress: null,
        connectorAccount: null,
        connectors: [],
        transferId: null,
        executionCondition: null,
        ilpPacket: null,
        failureReason: null,
        failureMessage: null,
        failureIlpCode: null,
        expiresAt: null,
        finishedAt: null,
        updatedAt: now,
      },
    );
    return changed === 1;
  }

  /** Records the quote and payment request of the current attempt, before its transfer is sent. */
  async recordAttempt(id: string, attempt: number, details: AttemptDetails, now: Date): Promise<boolean> {
    const changed = await this.em().nativeUpdate(
      PaymentEntity,
      { id, attempt, state: 'pending', transferId: null },
      { ...details, updatedAt: now },
    );
    return changed === 1;
  }

  /** The ledger holds the sender's funds. */
  async markPrepared(transferId: string, preparedAt: Date, now: Date): Promise<boolean> {
    const changed = await this.em().nativeUpdate(
      PaymentEntity,
      { transferId, state: 'pending' },
      { state: 'prepared', preparedAt, updatedAt: now },
    );
    return changed === 1;
  }

  /** The first transfer executed: the payment is done, `fulfillment` proves it. */
  async markExecuted(transferId: string, fulfillment: Buffer, now: Date): Promise<boolean> {
    const changed = await this.em().nativeUpdate(
      PaymentEntity,
      { transferId, state: { $in: ['pending', 'prepared'] satisfies PaymentState[] } },
      { state: 'executed', fulfillment, finishedAt: now, updatedAt: now },
    );
    return changed === 1;
  }

  /** The first transfer was rejected (`expired` false) or expired: the hold returned. */
  async markRejected(transferId: string, expired: boolean, ilpError: IlpError, now: Date): Promise<boolean> {
    const changed = await this.em().nativeUpdate(
      PaymentEntity,
      { transferId, state: { $in: ['pending', 'prepared'] satisfies PaymentState[] } },
      {
        state: expired ? 'expired' : 'rejected',
        ilpError: ilpErrorToStored(ilpError),
        finishedAt: now,
        updatedAt: now,
      },
    );
    return changed === 1;
  }

  /** The attempt failed before any money was held. */
  async markFailed(id: string, attempt: number, failure: PaymentFailure, now: Date): Promise<boolean> {
    const changed = await this.em().nativeUpdate(
      PaymentEntity,
      { id, attempt, state: 'pending' },
      {
        state: 'failed',
        failureReason: failure.reason,
        failureMessage: failure.message,
        failureIlpCode: failure.ilpCode,
        finishedAt: now,
        updatedAt: now,
      },
    );
    return changed === 1;
  }

  /**
   * Payments whose outcome is overdue: a transfer sent that should have expired before
   * `expiredBefore`, or an attempt that recorded no transfer since before `abandonedBefore`
   * (its process died while setting up).
   */
  async findOverduePayments(expiredBefore: Date, abandonedBefore: Date, limit: number): Promise<Payment[]> {
    const rows = await this.em().find(
      PaymentEntity,
      {
        $or: [
          { state: { $in: ['pending', 'prepared'] }, expiresAt: { $lt: expiredBefore } },
          { state: 'pending', transferId: null, updatedAt: { $lt: abandonedBefore } },
        ],
      },
      { limit, orderBy: { updatedAt: 'asc' }, disableIdentityMap: true },
    );
    return rows.map(paymentFromRow);
  }

  /** Records what happened to a transfer to a receiver; a repeat keeps the first record. */
  async recordIncoming(payment: IncomingPayment): Promise<void> {
    const row: IncomingPaymentRow = { ...payment };
    await this.em().createQueryBuilder(IncomingPaymentEntity).insert(row).onConflict('transferId').ignore().execute();
  }

  async findIncoming(transferId: string): Promise<IncomingPayment | undefined> {
    const row = await this.em().findOne(IncomingPaymentEntity, { transferId }, { disableIdentityMap: true });
    return row
      ? {
          ...row,
          amount: BigInt(row.amount),
          packetAmount: row.packetAmount === null ? null : BigInt(row.packetAmount),
        }
      : undefined;
  }

  /** The sequence of the last notification fully handled, or undefined before the first. */
  async readCursor(): Promise<bigint | undefined> {
    const row = await this.em().findOne(CursorEntity, { id: true }, { disableIdentityMap: true });
    return row ? BigInt(row.sequence) : undefined;
  }

  /** Moves the cursor forward (never back: replicas may save concurrently). */
  async saveCursor(sequence: bigint, now: Date): Promise<void> {
    await this.em()
      .getConnection()
      .execute(
        'insert into spsp_cursor (id, sequence, updated_at) values (true, ?, ?) ' +
          'on conflict (id) do update set sequence = greatest(spsp_cursor.sequence, excluded.sequence), ' +
          'updated_at = excluded.updated_at',
        [sequence.toString(), now],
      );
  }
}
