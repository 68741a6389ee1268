/**
 * The ports of ports.ts over gRPC: the SPSP service's ledger, its connector's QuotingService and
 * other DFSPs' SPSP servers. The only files of the SPSP service that read other services' wire
 * types; every failure comes out as a {@link RemoteError}.
 */
import type * as grpc from '@grpc/grpc-js';
import { Metadata, status } from '@grpc/grpc-js';
import { createQuotingClient, durationFromMs, durationToMs, type QuotingClient } from '../connector/client';
import {
  EventType,
  RejectionReason,
  TransferState,
  type SubscribeResponse,
  type Transfer as WireTransfer,
} from '../gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../ledger/client';
import { ilpErrorFromWire, ilpErrorToWire } from '../ledger/grpc';
import { uncertainOutcomeCodes, type ClientIdentity } from '../platform/client';
import { decodeGrpcError } from '../platform/errors';
import { injectContext } from '../platform/tracing';
import { createSpspClient, type SpspClient } from './client';
import type { IlpError, PaymentRequestInfo, ReceiverInfo } from './model';
import {
  RemoteError,
  type ConnectorQuote,
  type ConnectorQuoteRequest,
  type LedgerNotification,
  type LedgerTransferView,
  type Quoter,
  type RemoteSpsp,
  type SpspLedger,
} from './ports';
import { paymentRequestFromWire, receiverFromWire } from './wire';

/** Deadline of every unary call to another service. */
export const remoteCallTimeoutMs = 5_000;

/**
 * Options of a unary call: the deadline, and the active trace context in the metadata, so that a
 * payment is one trace across the SPSP services, the connectors and the ledgers.
 */
function callOptions(): { timeoutMs: number; metadata: grpc.Metadata } {
  const metadata = new Metadata();
  injectContext(metadata);
  return { timeoutMs: remoteCallTimeoutMs, metadata };
}

/** Reads any failure of a gRPC call as a {@link RemoteError}. */
export function remoteErrorFrom(error: unknown, service: string): RemoteError {
  if (error instanceof RemoteError) return error;
  const grpcError = error as grpc.ServiceError;
  if (typeof grpcError?.code !== 'number') {
    return new RemoteError('unavailable', '', `${service}: ${String((error as Error)?.message ?? error)}`);
  }
  const decoded = decodeGrpcError(grpcError);
  const kind = uncertainOutcomeCodes.has(decoded.code) ? 'unavailable' : 'refused';
  return new RemoteError(
    kind,
    decoded.reason ?? '',
    `${service}: ${decoded.message}`,
    decoded.metadata,
    decoded.code === status.NOT_FOUND,
  );
}

async function remote<Value>(service: string, action: () => Promise<Value>): Promise<Value> {
  try {
    return await action();
  } catch (error) {
    throw remoteErrorFrom(error, service);
  }
}

function transferFromWire(transfer: WireTransfer | undefined): LedgerTransferView {
  if (!transfer) throw new RemoteError('unavailable', '', 'the ledger answered without a transfer');
  return {
    id: transfer.id,
    debitAccount: transfer.debitAccount,
    creditAccount: transfer.creditAccount,
    amount: transfer.amount,
    executionCondition: Buffer.from(transfer.executionCondition),
    expiresAt: transfer.expiryTime ?? null,
    state:
      transfer.state === TransferState.TRANSFER_STATE_EXECUTED
        ? 'executed'
        : transfer.state === TransferState.TRANSFER_STATE_REJECTED
          ? 'rejected'
          : 'prepared',
    rejectionReason:
      transfer.rejectionReason === RejectionReason.REJECTION_REASON_CANCELLED
        ? 'cancelled'
        : transfer.rejectionReason === RejectionReason.REJECTION_REASON_EXPIRED
          ? 'expired'
          : null,
    ilpError: ilpErrorFromWire(transfer.ilpError) ?? null,
    ilpPacket: Buffer.from(transfer.ilpPacket),
    preparedAt: transfer.prepareTime ?? null,
    traceParent: transfer.traceParent === '' ? null : transfer.traceParent,
  };
}

const transferEventTypes: Partial<Record<EventType, 'prepared' | 'executed' | 'rejected'>> = {
  [EventType.EVENT_TYPE_TRANSFER_PREPARED]: 'prepared',
  [EventType.EVENT_TYPE_TRANSFER_EXECUTED]: 'executed',
  [EventType.EVENT_TYPE_TRANSFER_REJECTED]: 'rejected',
};

/** The SPSP service's ledger, through `client` (which acts as the SPSP principal). */
export function createLedgerAdapter(client: LedgerClient): SpspLedger {
  const service = 'ledger';
  return {
    describe: () =>
      remote(service, async () => {
        const info = (await client.getLedgerInfo({}, callOptions())).ledger;
        if (!info) throw new RemoteError('unavailable', '', 'the ledger did not describe itself');
        return {
          ilpPrefix: info.ilpPrefix,
          currencyCode: info.currencyCode,
          scale: info.scale,
          maxHoldMs: info.maxHoldDuration ? durationToMs(info.maxHoldDuration) : 0,
        };
      }),

    async getAccount(name) {
      try {
        const account = (await client.getAccount({ name }, callOptions())).account;
        return account ? { name: account.name, owner: account.owner, disabled: account.disabled } : undefined;
      } catch (error) {
        const failure = remoteErrorFrom(error, service);
        if (failure.notFound) return undefined;
        throw failure;
      }
    },

    listOwnedAccounts: () =>
      remote(service, async () => {
        const names: string[] = [];
        let pageToken = '';
        do {
          const page = await client.listAccounts({ pageSize: 1000, pageToken }, callOptions());
          names.push(...page.accounts.map((account) => account.name));
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        return names;
      }),

    prepareTransfer: (command) =>
      remote(service, async () =>
        transferFromWire(
          (
            await client.prepareTransfer(
              {
                transferId: command.transferId,
                debitAccount: command.debitAccount,
                creditAccount: command.creditAccount,
                amount: command.amount,
                executionCondition: command.executionCondition,
                expiryTime: command.expiresAt,
                ilpPacket: command.ilpPacket,
                memo: Buffer.alloc(0),
                traceParent: '',
              },
              callOptions(),
            )
          ).transfer,
        ),
      ),

    fulfillTransfer: (transferId, fulfillment) =>
      remote(service, async () =>
        transferFromWire((await client.fulfillTransfer({ transferId, fulfillment }, callOptions())).transfer),
      ),

    rejectTransfer: (transferId, ilpError: IlpError) =>
      remote(service, async () =>
        transferFromWire(
          (await client.rejectTransfer({ transferId, ilpError: ilpErrorToWire(ilpError) }, callOptions())).transfer,
        ),
      ),

    async getTransfer(transferId) {
      try {
        return transferFromWire((await client.getTransfer({ transferId }, callOptions())).transfer);
      } catch (error) {
        const failure = remoteErrorFrom(error, service);
        if (failure.notFound) return undefined;
        throw failure;
      }
    },

    getFulfillment: (transferId) =>
      remote(service, async () =>
        Buffer.from((await client.getFulfillment({ transferId }, callOptions())).fulfillment),
      ),

    subscribe(afterSequence, signal) {
      return (async function* (): AsyncGenerator<LedgerNotification> {
        const stream = client.subscribe({ accounts: [], eventTypes: [], afterSequence });
        const cancel = () => stream.cancel();
        signal.addEventListener('abort', cancel, { once: true });
        try {
          // A readable stream's async iterator reads one message at a time: a slow consumer
          // pauses the stream, and gRPC flow control pushes back on the ledger.
          for await (const response of stream as AsyncIterable<SubscribeResponse>) {
            const kind = response.kind;
            if (kind?.$case === 'subscribed') {
              yield { kind: 'subscribed', headSequence: kind.value.headSequence };
            } else if (kind?.$case === 'event') {
              const event = kind.value;
              const type = transferEventTypes[event.type];
              if (type && event.transfer) {
                yield {
                  kind: 'transfer',
                  sequence: event.sequence,
                  type,
                  transfer: transferFromWire(event.transfer),
                  fulfillment: event.fulfillment.length > 0 ? Buffer.from(event.fulfillment) : null,
                };
              } else {
                yield { kind: 'other', sequence: event.sequence };
              }
            }
          }
        } catch (error) {
          if (signal.aborted) return;
          throw remoteErrorFrom(error, service);
        } finally {
          signal.removeEventListener('abort', cancel);
          stream.cancel();
        }
      })();
    },
  };
}

/** The sender's connector's QuotingService at `endpoint`. */
export function createQuoterAdapter(endpoint: string, identity: ClientIdentity): Quoter & { close(): void } {
  const client: QuotingClient = createQuotingClient(endpoint, identity);
  return {
    quote: (request: ConnectorQuoteRequest) =>
      remote('connector', async (): Promise<ConnectorQuote> => {
        const common = {
          sourceLedgerPrefix: request.sourceLedgerPrefix,
          destinationAddress: request.destinationAddress,
          destinationHoldDuration: durationFromMs(request.destinationHoldMs),
        };
        const response =
          request.fixedAmount === 'source'
            ? await client.quoteBySourceAmount({ ...common, sourceAmount: request.amount }, callOptions())
            : await client.quoteByDestinationAmount({ ...common, destinationAmount: request.amount }, callOptions());
        const quote = response.quote;
        if (!quote) throw new RemoteError('unavailable', '', 'the connector answered without a quote');
        return {
          connectorAccount: quote.connectorAccount,
          sourceAmount: quote.sourceAmount,
          destinationAmount: quote.destinationAmount,
          sourceHoldMs: quote.sourceHoldDuration ? durationToMs(quote.sourceHoldDuration) : 0,
          destinationHoldMs: quote.destinationHoldDuration ? durationToMs(quote.destinationHoldDuration) : 0,
          connectors: [...quote.connectors],
        };
      }),
    close: () => client.close(),
  };
}

/** Other DFSPs' SPSP servers, one channel per endpoint. */
export function createRemoteSpspAdapter(identity: ClientIdentity): RemoteSpsp & { close(): void } {
  const clients = new Map<string, SpspClient>();
  const clientFor = (endpoint: string) => {
    let client = clients.get(endpoint);
    if (!client) clients.set(endpoint, (client = createSpspClient(endpoint, identity)));
    return client;
  };
  return {
    query: (endpoint, receiver) =>
      remote(`SPSP server ${endpoint}`, async (): Promise<ReceiverInfo> => {
        const response = await clientFor(endpoint).query({ receiver }, callOptions());
        if (!response.receiver)
          throw new RemoteError('unavailable', '', `SPSP server ${endpoint} described no receiver`);
        return receiverFromWire(response.receiver);
      }),
    setupPayment: (endpoint, request) =>
      remote(`SPSP server ${endpoint}`, async (): Promise<PaymentRequestInfo> => {
        const response = await clientFor(endpoint).setupPayment(
          { receiver: request.receiver, destinationAmount: request.destinationAmount, data: request.data },
          callOptions(),
        );
        const paymentRequest = response.paymentRequest && paymentRequestFromWire(response.paymentRequest);
        if (!paymentRequest) {
          throw new RemoteError('unavailable', '', `SPSP server ${endpoint} returned an incomplete payment request`);
        }
        return paymentRequest;
      }),
    close() {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}
