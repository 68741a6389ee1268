/**
 * The gRPC face of the ledger: maps protobuf messages to domain inputs and back, and nothing
 * else. Rules live in service.ts and processor.ts.
 */
import type * as grpc from '@grpc/grpc-js';
import { trace } from '@opentelemetry/api';
import {
  EventType as WireEventType,
  RejectionReason as WireRejectionReason,
  TransferState as WireTransferState,
  type Account as WireAccount,
  type Event as WireEvent,
  type IlpError as WireIlpError,
  type LedgerServiceServer,
  type Message as WireMessage,
  type PrepareTransferRequest,
  type Movement as WireMovement,
  type SubscribeRequest,
  type SubscribeResponse,
  type Transfer as WireTransfer,
  type TransferResult as WireTransferResult,
} from '../gen/interclear/ledger/v1/ledger';
import { invalidArgument, ServiceError, toStatus } from '../platform/errors';
import {
  asServiceError,
  failStream,
  inStreamContext,
  signalFor,
  toClientError,
  unary,
  writeWithBackpressure,
} from '../platform/handlers';
import type { Logger } from '../platform/logger';
import type { PrincipalResolver } from '../platform/principal';
import { ledgerAddress } from './address';
import { ledgerErrorDomain } from './errors';
import type { Account, EventType, IlpError, LedgerEvent, Message, Movement, Transfer, TransferState } from './model';
import { isStorableTime } from './model';
import type { LedgerService, PrepareTransferInput } from './service';

const stateToWire: Record<TransferState, WireTransferState> = {
  prepared: WireTransferState.TRANSFER_STATE_PREPARED,
  executed: WireTransferState.TRANSFER_STATE_EXECUTED,
  rejected: WireTransferState.TRANSFER_STATE_REJECTED,
};

const eventTypeToWire: Record<EventType, WireEventType> = {
  transfer_prepared: WireEventType.EVENT_TYPE_TRANSFER_PREPARED,
  transfer_executed: WireEventType.EVENT_TYPE_TRANSFER_EXECUTED,
  transfer_rejected: WireEventType.EVENT_TYPE_TRANSFER_REJECTED,
  message_sent: WireEventType.EVENT_TYPE_MESSAGE_SENT,
};

function stateFromWire(value: WireTransferState, field: string): TransferState | undefined {
  if (value === WireTransferState.TRANSFER_STATE_UNSPECIFIED) return undefined;
  const entry = Object.entries(stateToWire).find(([, wire]) => wire === value);
  if (!entry) throw invalidArgument([{ field, description: `unknown transfer state ${value}` }]);
  return entry[0] as TransferState;
}

function eventTypeFromWire(value: WireEventType, field: string): EventType {
  const entry = Object.entries(eventTypeToWire).find(([, wire]) => wire === value);
  if (!entry) throw invalidArgument([{ field, description: `unknown event type ${value}` }]);
  return entry[0] as EventType;
}

function int64Checked(value: bigint, field: string): bigint {
  if (value < -(2n ** 63n) || value >= 2n ** 63n) {
    throw invalidArgument([{ field, description: 'is out of the int64 range' }]);
  }
  return value;
}

/**
 * A Timestamp within years 1 to 9999 (RFC 3339's, and what the database stores and parses);
 * beyond about ±275,000 years it does not even decode to a valid Date.
 */
function timeChecked(value: Date | undefined, field: string): Date | undefined {
  if (value !== undefined && !isStorableTime(value)) {
    throw invalidArgument([{ field, description: 'must be a time from year 1 to 9999' }]);
  }
  return value;
}

export function accountToWire(account: Account, ilpPrefix: string): WireAccount {
  return {
    name: account.name,
    ilpAddress: ledgerAddress(ilpPrefix, account.name),
    owner: account.owner,
    balance: account.balance,
    heldAmount: account.heldAmount,
    minimumBalance: account.minimumBalance ?? 0n,
    minimumBalanceUnlimited: account.minimumBalance === null,
    disabled: account.disabled,
    createTime: account.createdAt,
    updateTime: account.updatedAt,
  };
}

export function ilpErrorToWire(error: IlpError): WireIlpError {
  return {
    code: error.code,
    name: error.name,
    message: error.message,
    triggeredBy: error.triggeredBy,
    forwardedBy: error.forwardedBy,
    triggerTime: error.triggeredAt,
    data: error.data,
  };
}

export function ilpErrorFromWire(error: WireIlpError | undefined): IlpError | undefined {
  if (!error) return undefined;
  return {
    code: error.code,
    name: error.name,
    message: error.message,
    triggeredBy: error.triggeredBy,
    forwardedBy: error.forwardedBy,
    triggeredAt: error.triggerTime,
    data: Buffer.from(error.data),
  };
}

export function transferToWire(transfer: Transfer): WireTransfer {
  return {
    id: transfer.id,
    debitAccount: transfer.debitAccount,
    creditAccount: transfer.creditAccount,
    amount: transfer.amount,
    executionCondition: transfer.executionCondition ?? Buffer.alloc(0),
    expiryTime: transfer.expiresAt ?? undefined,
    state: stateToWire[transfer.state],
    rejectionReason:
      transfer.rejectionReason === 'cancelled'
        ? WireRejectionReason.REJECTION_REASON_CANCELLED
        : transfer.rejectionReason === 'expired'
          ? WireRejectionReason.REJECTION_REASON_EXPIRED
          : WireRejectionReason.REJECTION_REASON_UNSPECIFIED,
    ilpError: transfer.ilpError ? ilpErrorToWire(transfer.ilpError) : undefined,
    ilpPacket: transfer.ilpPacket,
    memo: transfer.memo,
    prepareTime: transfer.preparedAt,
    executeTime: transfer.executedAt ?? undefined,
    rejectTime: transfer.rejectedAt ?? undefined,
    traceParent: transfer.traceParent ?? '',
  };
}

function movementToWire(movement: Movement): WireMovement {
  return {
    id: movement.id,
    account: movement.account,
    amount: movement.amount,
    externalReference: movement.externalReference,
    createTime: movement.createdAt,
    balanceAfter: movement.balanceAfter,
  };
}

function messageToWire(message: Message): WireMessage {
  return {
    id: message.id,
    fromAccount: message.fromAccount,
    toAccount: message.toAccount,
    data: message.data,
    sendTime: message.sentAt,
  };
}

export function eventToWire(event: LedgerEvent): WireEvent {
  return {
    sequence: event.sequence,
    type: eventTypeToWire[event.type],
    eventTime: event.occurredAt,
    transfer: event.transfer ? transferToWire(event.transfer) : undefined,
    fulfillment:
      event.type === 'transfer_executed' && event.transfer?.fulfillment ? event.transfer.fulfillment : Buffer.alloc(0),
    message: event.message ? messageToWire(event.message) : undefined,
  };
}

function prepareInputFromWire(request: PrepareTransferRequest): PrepareTransferInput {
  return {
    transferId: request.transferId,
    debitAccount: request.debitAccount,
    creditAccount: request.creditAccount,
    amount: request.amount,
    executionCondition: Buffer.from(request.executionCondition ?? Buffer.alloc(0)),
    expiresAt: timeChecked(request.expiryTime, 'expiry_time') ?? null,
    ilpPacket: Buffer.from(request.ilpPacket),
    memo: Buffer.from(request.memo),
    traceParent: request.traceParent,
  };
}

function isTransfer(value: unknown): value is Transfer {
  return typeof value === 'object' && value !== null && !(value instanceof Error) && 'debitAccount' in value;
}

/** Adds domain attributes to the RPC's span (the trace shows which transfer, where, how much). */
function annotate(attributes: Record<string, string>): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

/** The LedgerService implementation for grpc-js. */
export function createLedgerGrpcHandlers(
  service: LedgerService,
  resolvePrincipal: PrincipalResolver,
  logger: Logger,
): LedgerServiceServer {
  const domain = ledgerErrorDomain;
  const prefix = service.info().ilpPrefix;
  const handle = <Request, Response>(
    method: string,
    handler: (request: Request, call: grpc.ServerUnaryCall<Request, Response>) => Promise<Response> | Response,
  ) => unary<Request, Response>(domain, logger, method, handler);

  // A wrong preimage (a replayed or guessed fulfillment) or a late one (a connector that lost
  // money, or someone trying) leaves a trace; the line carries the caller's principal.
  const logRefusedFulfillment = (transferId: string, error: unknown) => {
    if (error instanceof ServiceError && ['UNMET_CONDITION', 'TRANSFER_EXPIRED'].includes(error.reason)) {
      logger.warn({ transferId, reason: error.reason }, 'fulfillment refused');
    }
  };
  // One item of a batch call: its transfer, or the status the single-item RPC would have failed with.
  const transferResult = (result: unknown, method: string): WireTransferResult =>
    isTransfer(result)
      ? { result: { $case: 'transfer', value: transferToWire(result) } }
      : { result: { $case: 'error', value: toStatus(asServiceError(result, logger, method), domain) } };

  return {
    getLedgerInfo: handle('GetLedgerInfo', (_request, call) => {
      resolvePrincipal(call);
      const info = service.info();
      return {
        ledger: {
          ilpPrefix: info.ilpPrefix,
          currencyCode: info.currencyCode,
          scale: info.scale,
          precision: info.precision,
          connectors: info.connectors,
          maxHoldDuration: { seconds: BigInt(Math.floor(info.maxHoldMs / 1000)), nanos: (info.maxHoldMs % 1000) * 1e6 },
        },
      };
    }),

    createAccount: handle('CreateAccount', async (request, call) => ({
      account: accountToWire(
        await service.createAccount(resolvePrincipal(call), {
          name: request.name,
          owner: request.owner,
          minimumBalance:
            request.minimumBalance === undefined ? undefined : int64Checked(request.minimumBalance, 'minimum_balance'),
          minimumBalanceUnlimited: request.minimumBalanceUnlimited,
          disabled: request.disabled,
        }),
        prefix,
      ),
    })),

    getAccount: handle('GetAccount', async (request, call) => ({
      account: accountToWire(await service.getAccount(resolvePrincipal(call), request.name), prefix),
    })),

    listAccounts: handle('ListAccounts', async (request, call) => {
      const page = await service.listAccounts(resolvePrincipal(call), request.pageSize, request.pageToken);
      return {
        accounts: page.items.map((account) => accountToWire(account, prefix)),
        nextPageToken: page.nextPageToken,
      };
    }),

    updateAccount: handle('UpdateAccount', async (request, call) => ({
      account: accountToWire(
        await service.updateAccount(resolvePrincipal(call), {
          name: request.name,
          minimumBalance: request.minimumBalance,
          minimumBalanceUnlimited: request.minimumBalanceUnlimited,
          disabled: request.disabled,
          owner: request.owner,
        }),
        prefix,
      ),
    })),

    deposit: handle('Deposit', async (request, call) => ({
      deposit: movementToWire(
        await service.deposit(resolvePrincipal(call), {
          id: request.depositId,
          account: request.account,
          amount: request.amount,
          externalReference: request.externalReference,
        }),
      ),
    })),

    withdraw: handle('Withdraw', async (request, call) => ({
      withdrawal: movementToWire(
        await service.withdraw(resolvePrincipal(call), {
          id: request.withdrawalId,
          account: request.account,
          amount: request.amount,
          externalReference: request.externalReference,
        }),
      ),
    })),

    prepareTransfer: handle('PrepareTransfer', async (request, call) => {
      annotate({
        'interclear.ledger': prefix,
        'interclear.transfer_id': request.transferId,
        'interclear.amount': request.amount.toString(),
        'interclear.debit_account': request.debitAccount,
        'interclear.credit_account': request.creditAccount,
      });
      return {
        transfer: transferToWire(await service.prepareTransfer(resolvePrincipal(call), prepareInputFromWire(request))),
      };
    }),

    fulfillTransfer: handle('FulfillTransfer', async (request, call) => {
      annotate({ 'interclear.ledger': prefix, 'interclear.transfer_id': request.transferId });
      try {
        return {
          transfer: transferToWire(
            await service.fulfillTransfer(resolvePrincipal(call), request.transferId, Buffer.from(request.fulfillment)),
          ),
        };
      } catch (error) {
        logRefusedFulfillment(request.transferId, error);
        throw error;
      }
    }),

    rejectTransfer: handle('RejectTransfer', async (request, call) => {
      annotate({
        'interclear.ledger': prefix,
        'interclear.transfer_id': request.transferId,
        'interclear.ilp_error_code': request.ilpError?.code ?? '',
      });
      return {
        transfer: transferToWire(
          await service.rejectTransfer(resolvePrincipal(call), request.transferId, ilpErrorFromWire(request.ilpError)),
        ),
      };
    }),

    prepareTransfers: handle('PrepareTransfers', async (request, call) => {
      const principal = resolvePrincipal(call);
      annotate({ 'interclear.ledger': prefix, 'interclear.batch_size': String(request.transfers.length) });
      const results = await service.transferBatch(request.transfers, 'transfers', (item) =>
        service.prepareCommand(principal, prepareInputFromWire(item)),
      );
      return { results: results.map((result) => transferResult(result, 'PrepareTransfers')) };
    }),

    fulfillTransfers: handle('FulfillTransfers', async (request, call) => {
      const principal = resolvePrincipal(call);
      annotate({ 'interclear.ledger': prefix, 'interclear.batch_size': String(request.fulfillments.length) });
      const results = await service.transferBatch(request.fulfillments, 'fulfillments', (item) =>
        service.fulfillCommand(principal, item.transferId, Buffer.from(item.fulfillment)),
      );
      results.forEach((result, index) => logRefusedFulfillment(request.fulfillments[index].transferId, result));
      return { results: results.map((result) => transferResult(result, 'FulfillTransfers')) };
    }),

    rejectTransfers: handle('RejectTransfers', async (request, call) => {
      const principal = resolvePrincipal(call);
      annotate({ 'interclear.ledger': prefix, 'interclear.batch_size': String(request.rejections.length) });
      const results = await service.transferBatch(request.rejections, 'rejections', (item) =>
        service.rejectCommand(principal, item.transferId, ilpErrorFromWire(item.ilpError)),
      );
      return { results: results.map((result) => transferResult(result, 'RejectTransfers')) };
    }),

    getTransfer: handle('GetTransfer', async (request, call) => ({
      transfer: transferToWire(await service.getTransfer(resolvePrincipal(call), request.transferId)),
    })),

    getFulfillment: handle('GetFulfillment', async (request, call) => {
      const result = await service.getFulfillment(resolvePrincipal(call), request.transferId);
      return { fulfillment: result.fulfillment, executeTime: result.executedAt };
    }),

    listTransfers: handle('ListTransfers', async (request, call) => {
      const page = await service.listTransfers(resolvePrincipal(call), {
        account: request.account,
        executionCondition: Buffer.from(request.executionCondition ?? Buffer.alloc(0)),
        state: stateFromWire(request.state, 'state'),
        startTime: timeChecked(request.startTime, 'start_time'),
        endTime: timeChecked(request.endTime, 'end_time'),
        pageSize: request.pageSize,
        pageToken: request.pageToken,
      });
      return { transfers: page.items.map(transferToWire), nextPageToken: page.nextPageToken };
    }),

    sendMessage: handle('SendMessage', async (request, call) => ({
      message: messageToWire(
        await service.sendMessage(resolvePrincipal(call), {
          id: request.messageId,
          fromAccount: request.fromAccount,
          toAccount: request.toAccount,
          data: Buffer.from(request.data),
        }),
      ),
    })),

    subscribe: (call: grpc.ServerWritableStream<SubscribeRequest, SubscribeResponse>) => {
      const controller = signalFor(call);
      inStreamContext(domain, 'Subscribe', async () => {
        try {
          const request = call.request;
          const eventTypes = request.eventTypes.map((type, index) => eventTypeFromWire(type, `event_types[${index}]`));
          const subscription = await service.subscribe(
            resolvePrincipal(call),
            { accounts: request.accounts, eventTypes, afterSequence: request.afterSequence },
            controller.signal,
          );
          await writeWithBackpressure(
            call,
            { kind: { $case: 'subscribed', value: { headSequence: subscription.headSequence } } },
            controller.signal,
          );
          for await (const event of subscription.events) {
            await writeWithBackpressure(
              call,
              { kind: { $case: 'event', value: eventToWire(event) } },
              controller.signal,
            );
          }
          // The hub stopped (server shutting down) or the client went away.
          if (!controller.signal.aborted) call.end();
        } catch (error) {
          if (!controller.signal.aborted) failStream(call, toClientError(error, domain, logger, 'Subscribe'));
        }
      });
    },
  };
}
