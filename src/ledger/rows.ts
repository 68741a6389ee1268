/**
 * Conversions between SQL rows and domain objects, shared by the command processor, the reads
 * and the notification hub, so a transfer looks the same whichever path loaded it.
 */
import type { Account, IlpError, Message, Movement, Transfer } from './model';

/** The columns of `accounts`, as {@link accountFromRow} reads them. */
export const accountColumns = 'name, owner, balance, held_amount, minimum_balance, disabled, created_at, updated_at';

/** A row of `accounts` as pg returns it (int8 parsed as bigint). */
export interface AccountRow {
  name: string;
  owner: string;
  balance: bigint;
  held_amount: bigint;
  minimum_balance: bigint | null;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export function accountFromRow(row: AccountRow): Account {
  return {
    name: row.name,
    owner: row.owner,
    balance: row.balance,
    heldAmount: row.held_amount,
    minimumBalance: row.minimum_balance,
    disabled: row.disabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The columns of `transfers`, in the order {@link transferFromRow} expects them. */
export const transferColumns =
  'id, debit_account, credit_account, amount, execution_condition, expires_at, state, rejection_reason, ' +
  'ilp_error, fulfillment, ilp_packet, memo, prepared_at, executed_at, rejected_at, trace_parent';

/** A row of `transfers` as pg returns it (int8 parsed as bigint). */
export interface TransferRow {
  id: string;
  debit_account: string;
  credit_account: string;
  amount: bigint;
  execution_condition: Buffer | null;
  expires_at: Date | null;
  state: Transfer['state'];
  rejection_reason: Transfer['rejectionReason'];
  ilp_error: StoredIlpError | null;
  fulfillment: Buffer | null;
  ilp_packet: Buffer;
  memo: Buffer;
  prepared_at: Date;
  executed_at: Date | null;
  rejected_at: Date | null;
  trace_parent: string | null;
}

/** How an ILP error is stored in the `ilp_error` jsonb column. */
export interface StoredIlpError {
  code: string;
  name: string;
  message: string;
  triggeredBy: string;
  forwardedBy: string[];
  triggeredAt: string | null;
  data: string;
}

export function ilpErrorToStored(error: IlpError): StoredIlpError {
  return {
    code: error.code,
    name: error.name,
    message: error.message,
    triggeredBy: error.triggeredBy,
    forwardedBy: error.forwardedBy,
    triggeredAt: error.triggeredAt ? error.triggeredAt.toISOString() : null,
    data: error.data.toString('base64'),
  };
}

export function ilpErrorFromStored(stored: StoredIlpError): IlpError {
  return {
    code: stored.code,
    name: stored.name,
    message: stored.message,
    triggeredBy: stored.triggeredBy,
    forwardedBy: stored.forwardedBy,
    triggeredAt: stored.triggeredAt ? new Date(stored.triggeredAt) : undefined,
    data: Buffer.from(stored.data, 'base64'),
  };
}

export function transferFromRow(row: TransferRow): Transfer {
  return {
    id: row.id,
    debitAccount: row.debit_account,
    creditAccount: row.credit_account,
    amount: row.amount,
    executionCondition: row.execution_condition,
    expiresAt: row.expires_at,
    state: row.state,
    rejectionReason: row.rejection_reason,
    ilpError: row.ilp_error ? ilpErrorFromStored(row.ilp_error) : null,
    fulfillment: row.fulfillment,
    ilpPacket: row.ilp_packet,
    memo: row.memo,
    preparedAt: row.prepared_at,
    executedAt: row.executed_at,
    rejectedAt: row.rejected_at,
    traceParent: row.trace_parent,
  };
}

/** A row of `movements`. */
export interface MovementRow {
  id: string;
  kind: Movement['kind'];
  account: string;
  amount: bigint;
  external_reference: string;
  balance_after: bigint;
  created_at: Date;
}

export function movementFromRow(row: MovementRow): Movement {
  return {
    id: row.id,
    kind: row.kind,
    account: row.account,
    amount: row.amount,
    externalReference: row.external_reference,
    balanceAfter: row.balance_after,
    createdAt: row.created_at,
  };
}

/** A row of `messages`. */
export interface MessageRow {
  id: string;
  from_account: string;
  to_account: string;
  data: Buffer;
  sent_at: Date;
}

export function messageFromRow(row: MessageRow): Message {
  return {
    id: row.id,
    fromAccount: row.from_account,
    toAccount: row.to_account,
    data: row.data,
    sentAt: row.sent_at,
  };
}

/** Whether two optional buffers hold the same bytes (null and empty differ). */
export function sameBytes(left: Buffer | null, right: Buffer | null): boolean {
  if (left === null || right === null) return left === right;
  return left.equals(right);
}

/** Whether two optional dates are the same instant, to the millisecond. */
export function sameInstant(left: Date | null, right: Date | null): boolean {
  if (left === null || right === null) return left === right;
  return left.getTime() === right.getTime();
}
