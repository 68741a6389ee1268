/**
 * Protobuf ↔ domain mapping of the SPSP contract, shared by the server (grpc.ts) and the
 * clients of other DFSPs' SPSP servers (adapters.ts), so both ends read the contract the same way.
 */
import { durationFromMs, durationToMs } from '../connector/client';
import {
  FixedAmount as WireFixedAmount,
  IncomingPaymentState as WireIncomingPaymentState,
  PaymentState as WirePaymentState,
  type IncomingPayment as WireIncomingPayment,
  type Payment as WirePayment,
  type PaymentQuote as WirePaymentQuote,
  type PaymentRequest as WirePaymentRequest,
  type Receiver as WireReceiver,
} from '../gen/interclear/spsp/v1/spsp';
import { ilpErrorToWire } from '../ledger/grpc';
import type {
  FixedAmount,
  IncomingPaymentState,
  Payment,
  PaymentQuote,
  PaymentRequestInfo,
  PaymentState,
  ReceiverInfo,
} from './model';
import type { ReceivedPayment } from './received';

const stateToWire: Record<PaymentState, WirePaymentState> = {
  pending: WirePaymentState.PAYMENT_STATE_PENDING,
  prepared: WirePaymentState.PAYMENT_STATE_PREPARED,
  executed: WirePaymentState.PAYMENT_STATE_EXECUTED,
  rejected: WirePaymentState.PAYMENT_STATE_REJECTED,
  expired: WirePaymentState.PAYMENT_STATE_EXPIRED,
  failed: WirePaymentState.PAYMENT_STATE_FAILED,
};

const fixedAmountToWire: Record<FixedAmount, WireFixedAmount> = {
  source: WireFixedAmount.FIXED_AMOUNT_SOURCE,
  destination: WireFixedAmount.FIXED_AMOUNT_DESTINATION,
};

/** The domain state of a wire state, or undefined for UNSPECIFIED or an unknown value. */
export function paymentStateFromWire(state: WirePaymentState): PaymentState | undefined {
  const entry = Object.entries(stateToWire).find(([, wire]) => wire === state);
  return entry?.[0] as PaymentState | undefined;
}

/** A receiver as SpspService describes it. */
export function receiverToWire(receiver: ReceiverInfo): WireReceiver {
  return {
    identifier: receiver.identifier,
    ilpAddress: receiver.ilpAddress,
    name: receiver.name,
    currencyCode: receiver.currencyCode,
    scale: receiver.scale,
    minimumAmount: receiver.minimumAmount,
    maximumAmount: receiver.maximumAmount ?? undefined,
    destinationHoldDuration: durationFromMs(receiver.destinationHoldMs),
  };
}

/** A receiver as another DFSP described it. */
export function receiverFromWire(receiver: WireReceiver): ReceiverInfo {
  return {
    identifier: receiver.identifier,
    ilpAddress: receiver.ilpAddress,
    name: receiver.name,
    currencyCode: receiver.currencyCode,
    scale: receiver.scale,
    minimumAmount: receiver.minimumAmount,
    maximumAmount: receiver.maximumAmount ?? null,
    destinationHoldMs: receiver.destinationHoldDuration ? durationToMs(receiver.destinationHoldDuration) : 0,
  };
}

/** A payment request as SetupPayment returns it. */
export function paymentRequestToWire(request: PaymentRequestInfo): WirePaymentRequest {
  return {
    receiver: receiverToWire(request.receiver),
    destinationAddress: request.destinationAddress,
    destinationAmount: request.destinationAmount,
    ilpPacket: request.ilpPacket,
    executionCondition: request.executionCondition,
    expiryTime: request.expiresAt,
    data: request.data,
  };
}

/** Reads a payment request; undefined when a required part is missing. */
export function paymentRequestFromWire(request: WirePaymentRequest): PaymentRequestInfo | undefined {
  if (!request.receiver || !request.expiryTime) return undefined;
  return {
    receiver: receiverFromWire(request.receiver),
    destinationAddress: request.destinationAddress,
    destinationAmount: request.destinationAmount,
    ilpPacket: Buffer.from(request.ilpPacket),
    executionCondition: Buffer.from(request.executionCondition),
    expiresAt: request.expiryTime,
    data: Buffer.from(request.data),
  };
}

/** A quote as PaymentService/Quote returns it. */
export function quoteToWire(quote: PaymentQuote): WirePaymentQuote {
  return {
    receiver: receiverToWire(quote.receiver),
    sourceAmount: quote.sourceAmount,
    sourceCurrencyCode: quote.sourceCurrencyCode,
    sourceScale: quote.sourceScale,
    destinationAmount: quote.destinationAmount,
    connectorAccount: quote.connectorAccount,
    sourceHoldDuration: durationFromMs(quote.sourceHoldMs),
    destinationHoldDuration: durationFromMs(quote.destinationHoldMs),
    connectors: quote.connectors,
    fixedAmount: fixedAmountToWire[quote.fixedAmount],
  };
}

/** A payment as PaymentService returns it; amounts not known yet are 0, as the contract says. */
export function paymentToWire(payment: Payment): WirePayment {
  return {
    id: payment.id,
    state: stateToWire[payment.state],
    senderAccount: payment.senderAccount,
    receiver: payment.receiver,
    fixedAmount: fixedAmountToWire[payment.fixedAmount],
    sourceAmount: payment.sourceAmount ?? (payment.fixedAmount === 'source' ? payment.amount : 0n),
    sourceCurrencyCode: payment.sourceCurrencyCode,
    sourceScale: payment.sourceScale,
    destinationAmount: payment.destinationAmount ?? (payment.fixedAmount === 'destination' ? payment.amount : 0n),
    destinationCurrencyCode: payment.destinationCurrencyCode ?? '',
    destinationScale: payment.destinationScale ?? 0,
    destinationAddress: payment.destinationAddress ?? '',
    connectorAccount: payment.connectorAccount ?? '',
    connectors: payment.connectors,
    transferId: payment.transferId ?? '',
    executionCondition: payment.executionCondition ?? Buffer.alloc(0),
    fulfillment: payment.fulfillment ?? Buffer.alloc(0),
    ilpError: payment.ilpError ? ilpErrorToWire(payment.ilpError) : undefined,
    failure: payment.failure
      ? { reason: payment.failure.reason, message: payment.failure.message, ilpCode: payment.failure.ilpCode ?? '' }
      : undefined,
    data: payment.data,
    createTime: payment.createdAt,
    prepareTime: payment.preparedAt ?? undefined,
    expiryTime: payment.expiresAt ?? undefined,
    finishTime: payment.finishedAt ?? undefined,
  };
}

const incomingStateToWire: Record<IncomingPaymentState, WireIncomingPaymentState> = {
  executed: WireIncomingPaymentState.INCOMING_PAYMENT_STATE_EXECUTED,
  rejected: WireIncomingPaymentState.INCOMING_PAYMENT_STATE_REJECTED,
  expired: WireIncomingPaymentState.INCOMING_PAYMENT_STATE_EXPIRED,
};

/**
 * The domain state of a wire incoming-payment state: undefined for UNSPECIFIED (no filter), null
 * for a value this version does not know.
 */
export function incomingStateFromWire(state: WireIncomingPaymentState): IncomingPaymentState | undefined | null {
  if (state === WireIncomingPaymentState.INCOMING_PAYMENT_STATE_UNSPECIFIED) return undefined;
  const found = (Object.keys(incomingStateToWire) as IncomingPaymentState[]).find(
    (key) => incomingStateToWire[key] === state,
  );
  return found ?? null;
}

/** An incoming payment as PaymentService returns it, in the asset of this DFSP's ledger. */
export function incomingPaymentToWire(
  payment: ReceivedPayment,
  asset: { currencyCode: string; scale: number },
): WireIncomingPayment {
  return {
    transferId: payment.transferId,
    receiver: payment.receiverIdentifier ?? '',
    account: payment.account,
    amount: payment.amount,
    currencyCode: asset.currencyCode,
    scale: asset.scale,
    destinationAddress: payment.destinationAddress ?? '',
    packetAmount: payment.packetAmount ?? 0n,
    data: payment.data,
    state: incomingStateToWire[payment.state],
    ilpErrorCode: payment.ilpErrorCode ?? '',
    ilpErrorMessage: payment.ilpErrorMessage ?? '',
    receivedAt: payment.receivedAt,
  };
}
