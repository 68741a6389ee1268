/**
 * The connector's view of one ledger: the ledger client's calls with their outcomes as domain
 * values (done, refused for a named reason, or unavailable and worth retrying) and notifications
 * decoded into {@link TransferNotification}s. The only file of the connector's core that knows
 * the ledger's wire types.
 */
import type * as grpc from '@grpc/grpc-js';
import { Metadata, status } from '@grpc/grpc-js';
import {
  EventType,
  RejectionReason,
  type Event as WireEvent,
  type SubscribeResponse,
  type Transfer as WireTransfer,
} from '../gen/interclear/ledger/v1/ledger';
import { createLedgerClient } from '../ledger/client';
import { withCallCoalescing, type CoalescingStatistics } from '../ledger/coalescing';
import { ilpErrorFromWire, ilpErrorToWire } from '../ledger/grpc';
import { int8Maximum, maximumAmount } from '../ledger/model';
import { uncertainOutcomeCodes, type ClientIdentity } from '../platform/client';
import { decodeGrpcError } from '../platform/errors';
import { injectContext } from '../platform/tracing';
import type { IlpError, LedgerEndpoint, ObservedTransfer, TransferNotification } from './model';

/** How a call to a ledger ended. */
export type LedgerCallResult<Value> =
  | { kind: 'ok'; value: Value }
  /** The ledger answered no, for `reason` (its ErrorInfo reason, e.g. INSUFFICIENT_FUNDS). */
  | { kind: 'refused'; reason: string; message: string; metadata: Record<string, string> }
  /** No answer, or a transient one (unavailable, deadline, internal): the call may be retried. */
  | { kind: 'unavailable'; message: string };

/** What the ledger says about itself, as the connector checks it. */
export interface ObservedLedgerInfo {
  prefix: string;
  currency: string;
  scale: number;
  maxHoldMs: number;
  /** The largest amount the ledger takes (its precision, at most 2^63 - 1). */
  maxAmount: bigint;
}

/** The connector's account on the ledger. */
export interface ObservedAccount {
  balance: bigint;
  heldAmount: bigint;
  /** Null: no lower limit. */
  minimumBalance: bigint | null;
}

/** A live notification stream: messages arrive through the handlers passed to subscribe. */
export interface NotificationStream {
  pause(): void;
  resume(): void;
  cancel(): void;
}

/** Handlers of a notification stream. */
export interface NotificationHandlers {
  /** The subscription is live; `headSequence` is the ledger's head when it started. */
  onSubscribed(headSequence: bigint): void;
  /** A notification (events that are not about transfers are skipped, with their sequence). */
  onNotification(notification: TransferNotification | { ledgerPrefix: string; sequence: bigint; type: 'other' }): void;
  /** The stream ended or failed; it will deliver nothing more. */
  onClosed(error: string | undefined): void;
}

/** The connector's gateway to one ledger. */
export interface LedgerGateway {
  readonly endpoint: LedgerEndpoint;
  info(): Promise<LedgerCallResult<ObservedLedgerInfo>>;
  /** The connector's account; `timeoutMs` shortens the call's deadline (e.g. for a status page). */
  account(timeoutMs?: number): Promise<LedgerCallResult<ObservedAccount>>;
  prepareTransfer(transfer: {
    id: string;
    creditAccount: string;
    amount: bigint;
    executionCondition: Buffer;
    expiresAt: Date;
    ilpPacket: Buffer;
  }): Promise<LedgerCallResult<void>>;
  fulfillTransfer(transferId: string, fulfillment: Buffer): Promise<LedgerCallResult<void>>;
  rejectTransfer(transferId: string, error: IlpError): Promise<LedgerCallResult<void>>;
  subscribe(afterSequence: bigint, handlers: NotificationHandlers): NotificationStream;
  /** How the prepare, fulfil and reject calls went out (alone or in batch calls), for metrics. */
  readonly coalescing: CoalescingStatistics;
  close(): void;
}

function outcomeOf(error: unknown): LedgerCallResult<never> {
  const grpcError = error as grpc.ServiceError;
  if (typeof grpcError?.code !== 'number')
    return { kind: 'unavailable', message: String((error as Error)?.message ?? error) };
  const decoded = decodeGrpcError(grpcError);
  if (uncertainOutcomeCodes.has(decoded.code)) return { kind: 'unavailable', message: decoded.message };
  return {
    kind: 'refused',
    reason: decoded.reason ?? status[decoded.code] ?? `CODE_${decoded.code}`,
    message: decoded.message,
    metadata: decoded.metadata,
  };
}

/**
 * Runs a call with the active trace context in its metadata (the job's span, which continues the
 * payment's trace) and turns its failure into an outcome.
 */
async function call<Value>(action: (metadata: grpc.Metadata) => Promise<Value>): Promise<LedgerCallResult<Value>> {
  const metadata = new Metadata();
  injectContext(metadata);
  try {
    return { kind: 'ok', value: await action(metadata) };
  } catch (error) {
    return outcomeOf(error);
  }
}

function transferFromWire(transfer: WireTransfer): ObservedTransfer {
  return {
    id: transfer.id,
    debitAccount: transfer.debitAccount,
    creditAccount: transfer.creditAccount,
    amount: transfer.amount,
    executionCondition: Buffer.from(transfer.executionCondition),
    expiresAt: transfer.expiryTime ?? null,
    ilpPacket: Buffer.from(transfer.ilpPacket),
    rejectionReason:
      transfer.rejectionReason === RejectionReason.REJECTION_REASON_CANCELLED
        ? 'cancelled'
        : transfer.rejectionReason === RejectionReason.REJECTION_REASON_EXPIRED
          ? 'expired'
          : null,
    ilpError: ilpErrorFromWire(transfer.ilpError) ?? null,
    traceParent: transfer.traceParent ? transfer.traceParent : null,
  };
}

const notificationTypes: Partial<Record<EventType, TransferNotification['type']>> = {
  [EventType.EVENT_TYPE_TRANSFER_PREPARED]: 'prepared',
  [EventType.EVENT_TYPE_TRANSFER_EXECUTED]: 'executed',
  [EventType.EVENT_TYPE_TRANSFER_REJECTED]: 'rejected',
};

/** Decodes a ledger event; events that are not about a transfer become `other`. */
export function notificationFromWire(
  ledgerPrefix: string,
  event: WireEvent,
): TransferNotification | { ledgerPrefix: string; sequence: bigint; type: 'other' } {
  const type = notificationTypes[event.type];
  if (!type || !event.transfer) return { ledgerPrefix, sequence: event.sequence, type: 'other' };
  return {
    ledgerPrefix,
    sequence: event.sequence,
    type,
    transfer: transferFromWire(event.transfer),
    fulfillment: event.fulfillment.length > 0 ? Buffer.from(event.fulfillment) : null,
  };
}

/** Per-call deadline of the connector's unary calls to ledgers. */
const callTimeoutMs = 5_000;

/** Connects to `endpoint` as `identity`. */
export function createLedgerGateway(endpoint: LedgerEndpoint, identity: ClientIdentity): LedgerGateway {
  // Concurrent prepares, fulfils and rejects of many payments travel together under load.
  const client = withCallCoalescing(createLedgerClient(endpoint.endpoint, identity));
  return {
    endpoint,
    coalescing: client.coalescing,
    info: () =>
      call(async (metadata) => {
        const { ledger } = await client.getLedgerInfo({}, { timeoutMs: callTimeoutMs, metadata });
        const hold = ledger?.maxHoldDuration;
        return {
          prefix: ledger?.ilpPrefix ?? '',
          currency: ledger?.currencyCode ?? '',
          scale: ledger?.scale ?? 0,
          maxHoldMs: hold ? Number(hold.seconds) * 1000 + Math.floor(hold.nanos / 1e6) : Number.MAX_SAFE_INTEGER,
          // A ledger that does not say its precision is capped only by what any ledger stores.
          maxAmount: ledger?.precision ? maximumAmount(ledger.precision) : int8Maximum,
        };
      }),
    account: (timeoutMs = callTimeoutMs) =>
      call(async (metadata) => {
        const { account } = await client.getAccount({ name: endpoint.account }, { timeoutMs, metadata });
        return {
          balance: account?.balance ?? 0n,
          heldAmount: account?.heldAmount ?? 0n,
          minimumBalance: account?.minimumBalanceUnlimited ? null : (account?.minimumBalance ?? 0n),
        };
      }),
    prepareTransfer: (transfer) =>
      call(async (metadata) => {
        await client.prepareTransfer(
          {
            transferId: transfer.id,
            debitAccount: endpoint.account,
            creditAccount: transfer.creditAccount,
            amount: transfer.amount,
            executionCondition: transfer.executionCondition,
            expiryTime: transfer.expiresAt,
            ilpPacket: transfer.ilpPacket,
            memo: Buffer.alloc(0),
            traceParent: '',
          },
          { timeoutMs: callTimeoutMs, metadata },
        );
      }),
    fulfillTransfer: (transferId, fulfillment) =>
      call(async (metadata) => {
        await client.fulfillTransfer({ transferId, fulfillment }, { timeoutMs: callTimeoutMs, metadata });
      }),
    rejectTransfer: (transferId, error) =>
      call(async (metadata) => {
        await client.rejectTransfer(
          { transferId, ilpError: ilpErrorToWire(error) },
          { timeoutMs: callTimeoutMs, metadata },
        );
      }),
    subscribe(afterSequence, handlers) {
      const stream = client.subscribe({ accounts: [endpoint.account], afterSequence });
      let closed = false;
      const close = (error: string | undefined) => {
        if (closed) return;
        closed = true;
        handlers.onClosed(error);
      };
      stream.on('data', (message: SubscribeResponse) => {
        if (message.kind?.$case === 'subscribed') handlers.onSubscribed(message.kind.value.headSequence);
        else if (message.kind?.$case === 'event')
          handlers.onNotification(notificationFromWire(endpoint.prefix, message.kind.value));
      });
      stream.on('error', (error: grpc.ServiceError) => close(error.details || error.message));
      stream.on('end', () => close(undefined));
      stream.on('close', () => close(undefined));
      return {
        pause: () => stream.pause(),
        resume: () => stream.resume(),
        cancel: () => stream.cancel(),
      };
    },
    close: () => client.close(),
  };
}
