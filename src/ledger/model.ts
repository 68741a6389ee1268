/**
 * The ledger's domain: accounts, transfers, movements, messages and events, in plain TypeScript.
 * Nothing here knows about gRPC or SQL.
 */

/** PREPARED moves to EXECUTED or REJECTED, never back. */
export type TransferState = 'prepared' | 'executed' | 'rejected';

/** Why a transfer was rejected: by the credited party, or by passing its expiry. */
export type RejectionReason = 'cancelled' | 'expired';

/** What a notification event reports. */
export type EventType = 'transfer_prepared' | 'transfer_executed' | 'transfer_rejected' | 'message_sent';

/** The caller of a command, as the gateway established it. */
export interface Principal {
  /** The principal's name, e.g. "connector.dfsp-a" or "admin". */
  name: string;
  /** Admins manage accounts, deposits and withdrawals and may act on any account. */
  isAdmin: boolean;
}

/** An Interledger error (RFC 0003) as carried by a rejected transfer. */
export interface IlpError {
  code: string;
  name: string;
  message: string;
  triggeredBy: string;
  forwardedBy: string[];
  triggeredAt?: Date;
  data: Buffer;
}

/** An account of the ledger. `minimumBalance` null means no lower limit. */
export interface Account {
  name: string;
  owner: string;
  /** Available balance in minor units. */
  balance: bigint;
  /** Sum of the amounts held by prepared transfers debiting the account. */
  heldAmount: bigint;
  minimumBalance: bigint | null;
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** A transfer between two accounts of the ledger. */
export interface Transfer {
  id: string;
  debitAccount: string;
  creditAccount: string;
  amount: bigint;
  /** 32-byte SHA-256 condition; null for an optimistic transfer that executes at once. */
  executionCondition: Buffer | null;
  expiresAt: Date | null;
  state: TransferState;
  rejectionReason: RejectionReason | null;
  ilpError: IlpError | null;
  fulfillment: Buffer | null;
  ilpPacket: Buffer;
  memo: Buffer;
  preparedAt: Date;
  executedAt: Date | null;
  rejectedAt: Date | null;
  /** Opaque trace context of the prepare (W3C traceparent), carried for forwarders. */
  traceParent: string | null;
}

/** Funds entering (deposit) or leaving (withdrawal) the ledger. */
export interface Movement {
  id: string;
  kind: 'deposit' | 'withdrawal';
  account: string;
  amount: bigint;
  externalReference: string;
  createdAt: Date;
  balanceAfter: bigint;
}

/** Opaque data relayed from one account's owner to another's subscribers. */
export interface Message {
  id: string;
  fromAccount: string;
  toAccount: string;
  data: Buffer;
  sentAt: Date;
}

/** A notification, with its per-ledger gap-free sequence number. */
export interface LedgerEvent {
  sequence: bigint;
  type: EventType;
  occurredAt: Date;
  /** The accounts whose subscribers receive the event. */
  accounts: string[];
  /** The transfer as it was right after the change (transfer events). */
  transfer?: Transfer;
  /** The message (message events). */
  message?: Message;
}

/** What the ledger says about itself. */
export interface LedgerInfo {
  ilpPrefix: string;
  currencyCode: string;
  scale: number;
  precision: number;
  connectors: string[];
  maxHoldMs: number;
}

/** The range of PostgreSQL's int8, in which balances and held amounts are stored. */
export const int8Minimum = -(2n ** 63n);
export const int8Maximum = 2n ** 63n - 1n;

/** The largest amount a ledger of `precision` digits accepts (also bounded by PostgreSQL int8). */
export function maximumAmount(precision: number): bigint {
  const byPrecision = 10n ** BigInt(precision) - 1n;
  return byPrecision < int8Maximum ? byPrecision : int8Maximum;
}

/**
 * Whether debiting `amount` keeps `account` at or above its minimum balance; an account without
 * a minimum still stops at the int8 floor.
 */
export function canDebit(account: Pick<Account, 'balance' | 'minimumBalance'>, amount: bigint): boolean {
  const floor = account.minimumBalance ?? int8Minimum;
  return account.balance - amount >= floor;
}

/**
 * Whether `amount` can be held on `account` (a prepare's hold) without its held amount passing
 * the int8 maximum. A credit line reaching down to -2^63 could otherwise hold 2^63.
 */
export function canHold(account: Pick<Account, 'heldAmount'>, amount: bigint): boolean {
  return account.heldAmount + amount <= int8Maximum;
}

/**
 * Whether `amount` can be credited to `account`. The invariant balance + held amount <= int8
 * maximum is what makes returning a hold (a rejection, an expiry) always possible: a hold comes
 * back to the balance it left, so the sum is the highest the balance can ever reach.
 */
export function canCredit(account: Pick<Account, 'balance' | 'heldAmount'>, amount: bigint): boolean {
  return account.balance + account.heldAmount + amount <= int8Maximum;
}

/**
 * Whether `amount`, held on `account`, can return to its balance. Always true on an account
 * that kept the invariant of {@link canCredit}; false only on one that broke it before the
 * ledger enforced it.
 */
export function canReturnHold(account: Pick<Account, 'balance'>, amount: bigint): boolean {
  return account.balance + amount <= int8Maximum;
}

const earliestStorableTimeMs = Date.parse('0001-01-01T00:00:00.000Z');
const latestStorableTimeMs = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * Whether `time` is within years 1 to 9999 (RFC 3339's, and what the database stores and
 * parses); false for an invalid Date.
 */
export function isStorableTime(time: Date): boolean {
  const ms = time.getTime();
  return ms >= earliestStorableTimeMs && ms <= latestStorableTimeMs;
}
