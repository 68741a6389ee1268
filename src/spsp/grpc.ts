/**
 * The gRPC face of the SPSP service: SpspService and PaymentService map protobuf messages to the
 * domain and back, and nothing else. Domain failures become a status once, here, through
 * errors.ts's table (ErrorInfo domain = the service's full name).
 */
import type * as grpc from '@grpc/grpc-js';
import { durationToMs } from '../connector/client';
import type {
  PaymentServiceServer,
  PayRequest,
  QuoteRequest,
  SpspServiceServer,
  WatchPaymentRequest,
  WatchPaymentResponse,
} from '../gen/interclear/spsp/v1/spsp';
import {
  failStream,
  inStreamContext,
  signalFor,
  toClientError,
  unary,
  writeWithBackpressure,
} from '../platform/handlers';
import type { Logger } from '../platform/logger';
import { invalidSpspArgument, paymentErrorDomain, spspErrorDomain, toServiceError } from './errors';
import type { FixedAmount } from './model';
import type { SendingService } from './payments';
import type { ReceivedPayments } from './received';
import type { ReceivingService } from './receiving';
import {
  incomingPaymentToWire,
  incomingStateFromWire,
  paymentRequestToWire,
  paymentToWire,
  quoteToWire,
  receiverToWire,
} from './wire';

/** Runs `action`, turning a domain error into the service error the edge reports. */
async function mapped<Value>(action: () => Promise<Value>): Promise<Value> {
  try {
    return await action();
  } catch (error) {
    throw toServiceError(error);
  }
}

function amountOf(request: QuoteRequest | PayRequest): { fixedAmount: FixedAmount | undefined; amount: bigint } {
  if (request.amount?.$case === 'sourceAmount') return { fixedAmount: 'source', amount: request.amount.value };
  if (request.amount?.$case === 'destinationAmount')
    return { fixedAmount: 'destination', amount: request.amount.value };
  return { fixedAmount: undefined, amount: 0n };
}

/** The SpspService implementation for grpc-js. */
export function createSpspGrpcHandlers(service: ReceivingService, logger: Logger): SpspServiceServer {
  const handle = <Request, Response>(method: string, handler: (request: Request) => Promise<Response>) =>
    unary<Request, Response>(spspErrorDomain, logger, method, (request) => mapped(() => handler(request)));
  return {
    query: handle('Query', async (request) => ({ receiver: receiverToWire(await service.query(request.receiver)) })),
    setupPayment: handle('SetupPayment', async (request) => ({
      paymentRequest: paymentRequestToWire(
        await service.setupPayment({
          receiver: request.receiver,
          destinationAmount: request.destinationAmount,
          data: Buffer.from(request.data),
          expiryMs: request.expiryDuration ? durationToMs(request.expiryDuration) : undefined,
        }),
      ),
    })),
  };
}

/** The PaymentService implementation for grpc-js. */
export function createPaymentGrpcHandlers(
  service: SendingService,
  received: ReceivedPayments,
  asset: { currencyCode: string; scale: number },
  logger: Logger,
): PaymentServiceServer {
  const handle = <Request, Response>(method: string, handler: (request: Request) => Promise<Response>) =>
    unary<Request, Response>(paymentErrorDomain, logger, method, (request) => mapped(() => handler(request)));
  return {
    quote: handle('Quote', async (request) => ({
      quote: quoteToWire(await service.quote({ receiver: request.receiver, ...amountOf(request) })),
    })),

    pay: handle('Pay', async (request) => ({
      payment: paymentToWire(
        await service.pay({
          paymentId: request.paymentId,
          senderAccount: request.senderAccount,
          receiver: request.receiver,
          ...amountOf(request),
          data: Buffer.from(request.data),
          maximumSourceAmount: request.maximumSourceAmount,
        }),
      ),
    })),

    getPayment: handle('GetPayment', async (request) => ({
      payment: paymentToWire(await service.getPayment(request.paymentId)),
    })),

    getIncomingPayment: handle('GetIncomingPayment', async (request) => ({
      payment: incomingPaymentToWire(await received.get(request.transferId), asset),
    })),

    listIncomingPayments: handle('ListIncomingPayments', async (request) => {
      const state = incomingStateFromWire(request.state);
      if (state === null)
        throw invalidSpspArgument([{ field: 'state', description: `unknown value ${request.state}` }]);
      const page = await received.list({
        receiver: request.receiver,
        state,
        pageSize: request.pageSize,
        pageToken: request.pageToken,
      });
      return {
        payments: page.payments.map((payment) => incomingPaymentToWire(payment, asset)),
        nextPageToken: page.nextPageToken,
      };
    }),

    watchPayment: (call: grpc.ServerWritableStream<WatchPaymentRequest, WatchPaymentResponse>) => {
      const controller = signalFor(call);
      inStreamContext(paymentErrorDomain, 'WatchPayment', async () => {
        try {
          for await (const payment of service.watchPayment(call.request.paymentId, controller.signal)) {
            await writeWithBackpressure(call, { payment: paymentToWire(payment) }, controller.signal);
          }
          if (!controller.signal.aborted) call.end();
        } catch (error) {
          if (!controller.signal.aborted) {
            failStream(call, toClientError(toServiceError(error), paymentErrorDomain, logger, 'WatchPayment'));
          }
        }
      });
    },
  };
}
