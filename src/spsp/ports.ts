/**
 * What the SPSP service needs from the outside world (its ledger, its connector, other DFSPs'
 * SPSP servers), as plain interfaces. adapters.ts implements them over gRPC; tests may implement
 * them in memory. Remote failures arrive as {@link RemoteError}: refused for good, or unavailable
 * (which, for a command, also means its outcome is unknown).
 */
import type { IlpError, PaymentRequestInfo, ReceiverInfo } from './model';

/** A remote call failed. */
export class RemoteError extends Error {
  constructor(
    /**
     * `refused`: the remote service answered with an error, the command did not happen.
     * `unavailable`: no answer (down, timed out, internal error): a command may or may not have
     * happened.
     */
    readonly kind: 'refused' | 'unavailable',
    /** The remote ErrorInfo reason, e.g. INSUFFICIENT_FUNDS; empty when there was none. */
    readonly reason: string,
    message: string,
    /** The remote ErrorInfo metadata, e.g. { ilp_code: "F02" }. */
    readonly metadata: Record<string, string> = {},
    /** Whether the remote status was NOT_FOUND. */
    readonly notFound = false,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

/** What the SPSP service knows of its ledger. */
export interface LedgerSummary {
  ilpPrefix: string;
  currencyCode: string;
  scale: number;
  maxHoldMs: number;
}

/** An account as the SPSP service reads it. */
export interface LedgerAccountView {
  name: string;
  owner: string;
  disabled: boolean;
}

/** A transfer as the SPSP service reads it from its ledger. */
export interface LedgerTransferView {
  id: string;
  debitAccount: string;
  creditAccount: string;
  amount: bigint;
  /** Empty for a transfer without condition. */
  executionCondition: Buffer;
  expiresAt: Date | null;
  state: 'prepared' | 'executed' | 'rejected';
  rejectionReason: 'cancelled' | 'expired' | null;
  ilpError: IlpError | null;
  ilpPacket: Buffer;
  preparedAt: Date | null;
  /** The W3C traceparent of the payment's trace, when the preparer sent one. */
  traceParent: string | null;
}

/** One message of a ledger's notification stream, reduced to what the SPSP service reads. */
export type LedgerNotification =
  | { kind: 'subscribed'; headSequence: bigint }
  | {
      kind: 'transfer';
      sequence: bigint;
      type: 'prepared' | 'executed' | 'rejected';
      transfer: LedgerTransferView;
      /** The fulfillment, for executed. */
      fulfillment: Buffer | null;
    }
  | { kind: 'other'; sequence: bigint };

/** The transfer the sender's SPSP service prepares. */
export interface PrepareTransferCommand {
  transferId: string;
  debitAccount: string;
  creditAccount: string;
  amount: bigint;
  executionCondition: Buffer;
  expiresAt: Date;
  ilpPacket: Buffer;
}

/** The SPSP service's own ledger, as the SPSP principal. */
export interface SpspLedger {
  /** Reads the ledger's description. */
  describe(): Promise<LedgerSummary>;
  /** An account, or undefined when it does not exist. */
  getAccount(name: string): Promise<LedgerAccountView | undefined>;
  /** Names of every account the SPSP principal owns. */
  listOwnedAccounts(): Promise<string[]>;
  prepareTransfer(command: PrepareTransferCommand): Promise<LedgerTransferView>;
  fulfillTransfer(transferId: string, fulfillment: Buffer): Promise<LedgerTransferView>;
  rejectTransfer(transferId: string, ilpError: IlpError): Promise<LedgerTransferView>;
  /** A transfer, or undefined when it does not exist. */
  getTransfer(transferId: string): Promise<LedgerTransferView | undefined>;
  /** The fulfillment of an executed transfer. */
  getFulfillment(transferId: string): Promise<Buffer>;
  /**
   * Follows every account the principal owns (as of now), from after `afterSequence` (replaying
   * what was missed) or from the head. Ends or throws when the stream breaks; `signal` stops it.
   */
  subscribe(afterSequence: bigint | undefined, signal: AbortSignal): AsyncIterable<LedgerNotification>;
}

/** A quote request to the sender's connector. */
export interface ConnectorQuoteRequest {
  sourceLedgerPrefix: string;
  destinationAddress: string;
  fixedAmount: 'source' | 'destination';
  amount: bigint;
  destinationHoldMs: number;
}

/** A connector's quote. */
export interface ConnectorQuote {
  connectorAccount: string;
  sourceAmount: bigint;
  destinationAmount: bigint;
  sourceHoldMs: number;
  destinationHoldMs: number;
  connectors: string[];
}

/** The sender's connector's QuotingService. */
export interface Quoter {
  quote(request: ConnectorQuoteRequest): Promise<ConnectorQuote>;
}

/** Another DFSP's SPSP server, at `endpoint`. */
export interface RemoteSpsp {
  query(endpoint: string, receiver: string): Promise<ReceiverInfo>;
  setupPayment(
    endpoint: string,
    request: { receiver: string; destinationAmount: bigint; data: Buffer },
  ): Promise<PaymentRequestInfo>;
}
