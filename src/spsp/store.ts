/**
 * The SPSP service's records: payments sent and their state transitions, payments received, and
 * the ledger cursor. Every transition is a conditional update from the states it may leave, so
 * that concurrent writers (the Pay call, the notification follower, the reconciler, a second
 * replica) can never move a payment backwards or finalise it twice.
 *
 * What every payment does (record, attempt, transitions, reads by id, incoming records, the
 * cursor) is SQL on a pg pool with named statements, prepared once per connection: through
 * MikroORM each of these cost several times the CPU of the query itself. The rare paths (a retry,
 * the reconciler's scan, reading the cursor at start) stay with MikroORM and its entities.
 */
import type { MikroORM } from '@mikro-orm/core';
import type { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { ilpErrorFromStored, ilpErrorToStored } from '../ledger/rows';
import type { IlpError, IncomingPayment, IncomingPaymentState, Payment, PaymentFailure, PaymentOrder } from './model';
import { CursorEntity, PaymentEntity, type IncomingPaymentRow, type PaymentRow } from './persistence';

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

/** A payment a transition moved: its id, and the condition its fulfillment must meet. */
export interface MovedPayment {
  id: string;
  executionCondition: Buffer | null;
}

/** A payment a transition made final, as the transition left it. */
export interface FinishedPayment extends MovedPayment {
  payment: Payment;
}

/** Every column of `spsp_payments`, named as {@link PaymentRow} names them. */
const paymentColumns =
  'id, state, attempt, sender_account as "senderAccount", receiver, fixed_amount as "fixedAmount", amount, ' +
  'maximum_source_amount as "maximumSourceAmount", data, source_amount as "sourceAmount", ' +
  'source_currency_code as "sourceCurrencyCode", source_scale as "sourceScale", ' +
  'destination_amount as "destinationAmount", destination_currency_code as "destinationCurrencyCode", ' +
  'destination_scale as "destinationScale", destination_address as "destinationAddress", ' +
  'connector_account as "connectorAccount", connectors, transfer_id as "transferId", ' +
  'execution_condition as "executionCondition", ilp_packet as "ilpPacket", fulfillment, ilp_error as "ilpError", ' +
  'failure_reason as "failureReason", failure_message as "failureMessage", failure_ilp_code as "failureIlpCode", ' +
  'created_at as "createdAt", updated_at as "updatedAt", prepared_at as "preparedAt", expires_at as "expiresAt", ' +
  'finished_at as "finishedAt"';

/** Every column of `spsp_incoming_payments`, named as {@link IncomingPaymentRow} names them. */
const incomingColumns =
  'transfer_id as "transferId", receiver, account, amount, destination_address as "destinationAddress", ' +
  'packet_amount as "packetAmount", data, execution_condition as "executionCondition", state, ' +
  'ilp_error_code as "ilpErrorCode", ilp_error_message as "ilpErrorMessage", received_at as "receivedAt"';

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

/** The payment a final transition returned, if it moved one. */
function finished(rows: PaymentRow[]): FinishedPayment | undefined {
  if (rows.length === 0) return undefined;
  const payment = paymentFromRow(rows[0]);
  return { id: payment.id, executionCondition: payment.executionCondition, payment };
}

/** The SPSP service's records. */
export class SpspStore {
  constructor(
    /** The rare paths. */
    private readonly orm: MikroORM<PostgreSqlDriver>,
    /** The hot path: a pool on the same database (int8 as bigint, see platform/database.ts). */
    private readonly pool: pg.Pool,
  ) {}

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
    // A concurrent insert of the same id waits for this one's commit, then inserts nothing.
    const result = await this.pool.query({
      name: 'spsp-insert-payment',
      text:
        'insert into spsp_payments (id, state, attempt, sender_account, receiver, fixed_amount, amount, ' +
        'maximum_source_amount, data, source_currency_code, source_scale, created_at, updated_at) ' +
        'values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) on conflict (id) do nothing',
      values: [
        row.id,
        row.state,
        row.attempt,
        row.senderAccount,
        row.receiver,
        row.fixedAmount,
        row.amount.toString(),
        row.maximumSourceAmount?.toString() ?? null,
        row.data,
        row.sourceCurrencyCode,
        row.sourceScale,
        now,
      ],
    });
    if (result.rowCount === 1) return { inserted: true, payment: paymentFromRow(row) };
    const existing = await this.findPayment(order.id);
    if (!existing) throw new Error(`payment ${order.id} conflicts on insert but cannot be read`);
    return { inserted: false, existing };
  }

  async findPayment(id: string): Promise<Payment | undefined> {
    const result = await this.pool.query<PaymentRow>({
      name: 'spsp-find-payment',
      text: `select ${paymentColumns} from spsp_payments where id = $1`,
      values: [id],
    });
    return result.rows.length === 1 ? paymentFromRow(result.rows[0]) : undefined;
  }

  async findPaymentByTransfer(transferId: string): Promise<Payment | undefined> {
    const result = await this.pool.query<PaymentRow>({
      name: 'spsp-find-payment-by-transfer',
      text: `select ${paymentColumns} from spsp_payments where transfer_id = $1`,
      values: [transferId],
    });
    return result.rows.length === 1 ? paymentFromRow(result.rows[0]) : undefined;
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
    const result = await this.pool.query({
      name: 'spsp-record-attempt',
      text:
        'update spsp_payments set source_amount = $3, destination_amount = $4, destination_currency_code = $5, ' +
        'destination_scale = $6, destination_address = $7, connector_account = $8, connectors = $9, ' +
        'transfer_id = $10, execution_condition = $11, ilp_packet = $12, expires_at = $13, updated_at = $14 ' +
        "where id = $1 and attempt = $2 and state = 'pending' and transfer_id is null",
      values: [
        id,
        attempt,
        details.sourceAmount.toString(),
        details.destinationAmount.toString(),
        details.destinationCurrencyCode,
        details.destinationScale,
        details.destinationAddress,
        details.connectorAccount,
        JSON.stringify(details.connectors),
        details.transferId,
        details.executionCondition,
        details.ilpPacket,
        details.expiresAt,
        now,
      ],
    });
    return result.rowCount === 1;
  }

  /** The ledger holds the sender's funds. Returns the payment moved, if one was pending. */
  async markPrepared(transferId: string, preparedAt: Date, now: Date): Promise<MovedPayment | undefined> {
    const result = await this.pool.query<MovedPayment>({
      name: 'spsp-mark-prepared',
      text:
        "update spsp_payments set state = 'prepared', prepared_at = $2, updated_at = $3 " +
        "where transfer_id = $1 and state = 'pending' " +
        'returning id, execution_condition as "executionCondition"',
      values: [transferId, preparedAt, now],
    });
    return result.rows[0];
  }

  /**
   * The first transfer executed: the payment is done, `fulfillment` proves it. Returns the
   * payment moved, if it was still open.
   */
  async markExecuted(transferId: string, fulfillment: Buffer, now: Date): Promise<FinishedPayment | undefined> {
    const result = await this.pool.query<PaymentRow>({
      name: 'spsp-mark-executed',
      text:
        "update spsp_payments set state = 'executed', fulfillment = $2, finished_at = $3, updated_at = $3 " +
        "where transfer_id = $1 and state in ('pending', 'prepared') " +
        `returning ${paymentColumns}`,
      values: [transferId, fulfillment, now],
    });
    return finished(result.rows);
  }

  /**
   * The first transfer was rejected (`expired` false) or expired: the hold returned. Returns the
   * payment moved, if it was still open.
   */
  async markRejected(
    transferId: string,
    expired: boolean,
    ilpError: IlpError,
    now: Date,
  ): Promise<FinishedPayment | undefined> {
    const result = await this.pool.query<PaymentRow>({
      name: 'spsp-mark-rejected',
      text:
        'update spsp_payments set state = $2, ilp_error = $3, finished_at = $4, updated_at = $4 ' +
        "where transfer_id = $1 and state in ('pending', 'prepared') " +
        `returning ${paymentColumns}`,
      values: [transferId, expired ? 'expired' : 'rejected', JSON.stringify(ilpErrorToStored(ilpError)), now],
    });
    return finished(result.rows);
  }

  /**
   * The attempt failed before any money was held: only while it is pending with `transferId` as
   * its recorded transfer (null: none yet), so that a failure decided from an older read cannot
   * overwrite an attempt that has sent its transfer since.
   */
  async markFailed(
    id: string,
    attempt: number,
    transferId: string | null,
    failure: PaymentFailure,
    now: Date,
  ): Promise<boolean> {
    const result = await this.pool.query({
      name: 'spsp-mark-failed',
      text:
        "update spsp_payments set state = 'failed', failure_reason = $3, failure_message = $4, " +
        'failure_ilp_code = $5, finished_at = $6, updated_at = $6 ' +
        "where id = $1 and attempt = $2 and state = 'pending' and transfer_id is not distinct from $7",
      values: [id, attempt, failure.reason, failure.message, failure.ilpCode, now, transferId],
    });
    return result.rowCount === 1;
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
    await this.pool.query({
      name: 'spsp-record-incoming',
      text:
        'insert into spsp_incoming_payments (transfer_id, receiver, account, amount, destination_address, ' +
        'packet_amount, data, execution_condition, state, ilp_error_code, ilp_error_message, received_at) ' +
        'values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) on conflict (transfer_id) do nothing',
      values: [
        payment.transferId,
        payment.receiver,
        payment.account,
        payment.amount.toString(),
        payment.destinationAddress,
        payment.packetAmount?.toString() ?? null,
        payment.data,
        payment.executionCondition,
        payment.state,
        payment.ilpErrorCode,
        payment.ilpErrorMessage,
        payment.receivedAt,
      ],
    });
  }

  async findIncoming(transferId: string): Promise<IncomingPayment | undefined> {
    const result = await this.pool.query<IncomingPaymentRow>({
      name: 'spsp-find-incoming',
      text: `select ${incomingColumns} from spsp_incoming_payments where transfer_id = $1`,
      values: [transferId],
    });
    return result.rows[0];
  }

  /**
   * Incoming payments in the order they were decided (then by transfer id), after `after`,
   * optionally of one receiver or in one state.
   */
  async listIncoming(filter: {
    receiver?: string;
    state?: IncomingPaymentState;
    after?: { receivedAt: Date; transferId: string };
    limit: number;
  }): Promise<IncomingPayment[]> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const parameter = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (filter.receiver !== undefined) conditions.push(`receiver = ${parameter(filter.receiver)}`);
    if (filter.state !== undefined) conditions.push(`state = ${parameter(filter.state)}`);
    if (filter.after !== undefined) {
      conditions.push(
        `(received_at, transfer_id) > (${parameter(filter.after.receivedAt)}, ${parameter(filter.after.transferId)}::uuid)`,
      );
    }
    const result = await this.pool.query<IncomingPaymentRow>({
      text:
        `select ${incomingColumns} from spsp_incoming_payments` +
        (conditions.length > 0 ? ` where ${conditions.join(' and ')}` : '') +
        ` order by received_at, transfer_id limit ${parameter(filter.limit)}`,
      values,
    });
    return result.rows;
  }

  /** The sequence of the last notification fully handled, or undefined before the first. */
  async readCursor(): Promise<bigint | undefined> {
    const row = await this.em().findOne(CursorEntity, { id: true }, { disableIdentityMap: true });
    return row ? BigInt(row.sequence) : undefined;
  }

  /** Moves the cursor forward (never back: replicas may save concurrently). */
  async saveCursor(sequence: bigint, now: Date): Promise<void> {
    await this.pool.query({
      name: 'spsp-save-cursor',
      text:
        'insert into spsp_cursor (id, sequence, updated_at) values (true, $1, $2) ' +
        'on conflict (id) do update set sequence = greatest(spsp_cursor.sequence, excluded.sequence), ' +
        'updated_at = excluded.updated_at',
      values: [sequence.toString(), now],
    });
  }
}
