/**
 * The connector's domain: its configuration, the payments it forwards and their states, in plain
 * TypeScript. Nothing here knows about gRPC or SQL.
 */
import type { Rational } from '../ilp';
import type { IlpError } from '../ledger/model';

export type { IlpError };

/** One ledger the connector holds an account on. */
export interface LedgerEndpoint {
  /** The ledger's ILP prefix, ending with ".". */
  prefix: string;
  /** The ledger's gRPC endpoint, host:port. */
  endpoint: string;
  /** The connector's account on the ledger. */
  account: string;
  /** The ledger's currency code, as configured (checked against the ledger when connecting). */
  currency: string;
  /** The ledger's asset scale, as configured (checked against the ledger when connecting). */
  scale: number;
}

/** The next connector on a configured route. */
export interface NextHop {
  /** The next connector's account on the route's ledger: the credit account of the outgoing transfer. */
  account: string;
  /** The next connector's QuotingService endpoint, host:port. */
  quotingEndpoint: string;
}

/**
 * A routing table entry. A `local` route is a connected ledger's own prefix: the connector is the
 * last hop and credits the destination account itself.
 */
export type Route =
  | { targetPrefix: string; ledgerPrefix: string; local: true }
  | { targetPrefix: string; ledgerPrefix: string; local: false; nextHop: NextHop };

/** A configured exchange rate: destination units per source unit (whole units). */
export interface RateEntry {
  source: string;
  destination: string;
  rate: Rational;
}

/** The connector's validated configuration. */
export interface ConnectorSettings {
  /** Names the connector in logs, its database and its transfer ids. */
  name: string;
  /** host:port the gRPC server listens on. */
  listen: string;
  /** The principal the connector acts as on every ledger (it owns its accounts). */
  principal: string;
  /** The connector's ILP address: triggered_by and forwarded_by of the ILP errors it raises. */
  ilpAddress: string;
  ledgers: LedgerEndpoint[];
  /** Configured routes (the ledgers' own prefixes are added as local routes). */
  routes: Route[];
  rates: RateEntry[];
  /** Share of every payment the connector keeps, e.g. 1/500. */
  spread: Rational;
  /** Time reserved per hop for a fulfillment to travel back. */
  messageWindowMs: number;
  /** The longest the connector holds an outgoing transfer. */
  maxHoldMs: number;
  /** The destination hold a quote assumes when the request names none. */
  destinationHoldMs: number;
}

/**
 * Where a payment is, from the connector's side. One payment is one incoming transfer and at
 * most one outgoing transfer, whose id is the payment's id.
 *
 *   forwarding ─▶ prepared ─▶ fulfilling ─▶ fulfilled
 *        │            │            └──────▶ lost
 *        └────────────┴─▶ rejecting ─▶ rejected
 *
 * `forwarding`, `fulfilling` and `rejecting` have a job: a call to a ledger, retried with
 * backoff until it is answered for good.
 */
export type PaymentState = 'forwarding' | 'prepared' | 'fulfilling' | 'fulfilled' | 'rejecting' | 'rejected' | 'lost';

/** The states in which the payment has a job to run. */
export const jobStates: readonly PaymentState[] = ['forwarding', 'fulfilling', 'rejecting'];

/** The outgoing transfer the connector prepares (or prepared) for a payment. */
export interface OutgoingTransfer {
  ledgerPrefix: string;
  creditAccount: string;
  amount: bigint;
  expiresAt: Date;
}

/** A payment through the connector, as persisted. */
export interface Payment {
  /** The outgoing transfer's id, derived from the incoming transfer (see ids.ts). */
  id: string;
  incomingLedgerPrefix: string;
  incomingTransferId: string;
  incomingAmount: bigint;
  incomingExpiresAt: Date;
  /** The 32-byte condition shared by both transfers. */
  executionCondition: Buffer;
  /** The ILP packet shared by both transfers. */
  ilpPacket: Buffer;
  /** The trace the incoming transfer was prepared in (W3C traceparent); the jobs continue it. */
  traceParent: string | null;
  /** Null when the payment was rejected before forwarding. */
  outgoing: OutgoingTransfer | null;
  state: PaymentState;
  /** Set once the outgoing transfer executed; never logged. */
  fulfillment: Buffer | null;
  /** The error the incoming transfer is (to be) rejected with. */
  ilpError: IlpError | null;
  /** Failed attempts of the current job. */
  attempts: number;
  /** When the job may run next. */
  nextAttemptAt: Date;
  /** The last failure of the job, for operators. */
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A transfer as a notification shows it, reduced to what the connector reads. */
export interface ObservedTransfer {
  id: string;
  debitAccount: string;
  creditAccount: string;
  amount: bigint;
  executionCondition: Buffer;
  expiresAt: Date | null;
  ilpPacket: Buffer;
  rejectionReason: 'cancelled' | 'expired' | null;
  ilpError: IlpError | null;
  /** W3C traceparent of the call that prepared it, so the connector continues the payment's trace. */
  traceParent: string | null;
}

/** A notification about a transfer touching the connector's account on one ledger. */
export interface TransferNotification {
  ledgerPrefix: string;
  sequence: bigint;
  type: 'prepared' | 'executed' | 'rejected';
  transfer: ObservedTransfer;
  /** For `executed`: the fulfillment. */
  fulfillment: Buffer | null;
}
