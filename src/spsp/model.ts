/**
 * The SPSP service's domain: receivers, payment requests, quotes, the payments it sends and the
 * payments it receives, in plain TypeScript. Nothing here knows about gRPC or SQL.
 */
import { int8Maximum, type IlpError } from '../ledger/model';

export type { IlpError };

/** A receiver as its DFSP describes it to senders. */
export interface ReceiverInfo {
  /** "name@dfsp", e.g. "bob@dfsp-b". */
  identifier: string;
  /** The receiver's account address: its ledger's prefix followed by its account name. */
  ilpAddress: string;
  /** For display. */
  name: string;
  currencyCode: string;
  scale: number;
  /** Smallest accepted amount, minor units. */
  minimumAmount: bigint;
  /** Largest accepted amount, minor units; null: no limit. */
  maximumAmount: bigint | null;
  /** How long the receiver wants the last transfer held. */
  destinationHoldMs: number;
}

/** An Interledger Payment Request, as the receiver's SPSP server issues it. */
export interface PaymentRequestInfo {
  receiver: ReceiverInfo;
  /** The receiver's address, a dot and the payment token. */
  destinationAddress: string;
  destinationAmount: bigint;
  /** The serialized ILP payment packet. */
  ilpPacket: Buffer;
  /** SHA-256 of the fulfillment, 32 bytes. */
  executionCondition: Buffer;
  expiresAt: Date;
  data: Buffer;
}

/** Which amount the sender fixes. */
export type FixedAmount = 'source' | 'destination';

/** A price through the sender's connector. */
export interface PaymentQuote {
  receiver: ReceiverInfo;
  fixedAmount: FixedAmount;
  sourceAmount: bigint;
  sourceCurrencyCode: string;
  sourceScale: number;
  destinationAmount: bigint;
  /** The connector's account on the sender's ledger: the first transfer's credit account. */
  connectorAccount: string;
  sourceHoldMs: number;
  destinationHoldMs: number;
  /** ILP addresses of the connectors on the path, in order. */
  connectors: string[];
}

/**
 * Where a payment this DFSP sends is.
 *
 *   pending ─▶ prepared ─▶ executed | rejected | expired
 *      └─────▶ failed (no money was ever held; Pay may retry it under the same id)
 *
 * A pending payment whose prepare was sent but not confirmed may move straight to a final state
 * when the ledger's notification arrives before the prepare's answer.
 */
export type PaymentState = 'pending' | 'prepared' | 'executed' | 'rejected' | 'expired' | 'failed';

/** The largest amount a payment can carry: what a ledger stores. */
export const maximumPaymentAmount = int8Maximum;

/** The states a payment never leaves. */
export const finalPaymentStates: readonly PaymentState[] = ['executed', 'rejected', 'expired', 'failed'];

/** Whether `state` is final. */
export function isFinalPaymentState(state: PaymentState): boolean {
  return finalPaymentStates.includes(state);
}

/** Why a payment failed before any money was held. */
export interface PaymentFailure {
  /** An SPSP error reason, e.g. INSUFFICIENT_FUNDS. */
  reason: string;
  message: string;
  /** The ILP code of a refused quote, else null. */
  ilpCode: string | null;
}

/** What the caller of Pay asked for: the content that idempotency compares. */
export interface PaymentOrder {
  id: string;
  senderAccount: string;
  receiver: string;
  fixedAmount: FixedAmount;
  /** The fixed amount: source minor units, or destination minor units. */
  amount: bigint;
  data: Buffer;
  /** With a fixed destination: the most the sender will pay. */
  maximumSourceAmount: bigint | null;
}

/** A payment this DFSP sends, as recorded. */
export interface Payment extends PaymentOrder {
  state: PaymentState;
  /** Incremented each time a failed payment is retried. */
  attempt: number;
  sourceAmount: bigint | null;
  sourceCurrencyCode: string;
  sourceScale: number;
  destinationAmount: bigint | null;
  destinationCurrencyCode: string | null;
  destinationScale: number | null;
  destinationAddress: string | null;
  connectorAccount: string | null;
  connectors: string[];
  transferId: string | null;
  executionCondition: Buffer | null;
  ilpPacket: Buffer | null;
  /** Proof of payment, once executed. */
  fulfillment: Buffer | null;
  ilpError: IlpError | null;
  failure: PaymentFailure | null;
  createdAt: Date;
  updatedAt: Date;
  preparedAt: Date | null;
  expiresAt: Date | null;
  finishedAt: Date | null;
}

/** What happened to a transfer to one of this DFSP's receivers. */
export type IncomingPaymentState = 'executed' | 'rejected' | 'expired';

/** A payment received (or refused) by one of this DFSP's receivers, for history. */
export interface IncomingPayment {
  /** The last transfer's id, on this DFSP's ledger. */
  transferId: string;
  /** The receiver's name, or null when the credited account is not a receiver. */
  receiver: string | null;
  account: string;
  /** The transfer's amount. */
  amount: bigint;
  /** The packet's destination and amount, when the packet could be read. */
  destinationAddress: string | null;
  packetAmount: bigint | null;
  data: Buffer;
  executionCondition: Buffer;
  state: IncomingPaymentState;
  /** For rejected: the ILP error code and message the receiver rejected with. */
  ilpErrorCode: string | null;
  ilpErrorMessage: string | null;
  receivedAt: Date;
}
