/**
 * The connector's failures: the ILP errors it rejects incoming transfers with, and the quote
 * failures with their gRPC codes in one exhaustive table (a code added without a mapping fails
 * the build).
 */
import * as grpc from '@grpc/grpc-js';
import { ILP_ERROR_NAMES, ilpErrorName, type IlpErrorCode } from '../ilp';
import { ServiceError } from '../platform/errors';
import type { IlpError } from './model';

/** An ILP error raised by this connector (triggered_by = its address, not forwarded yet). */
export function connectorIlpError(code: IlpErrorCode, message: string, connectorAddress: string, now: Date): IlpError {
  return {
    code,
    name: ILP_ERROR_NAMES[code],
    message,
    triggeredBy: connectorAddress,
    forwardedBy: [],
    triggeredAt: now,
    data: Buffer.alloc(0),
  };
}

/**
 * The error of a rejected outgoing transfer as relayed to the incoming one: the same error,
 * with this connector appended to forwarded_by (the connector nearest the trigger comes first).
 */
export function relayedIlpError(error: IlpError, connectorAddress: string): IlpError {
  let name = error.name;
  if (name === '') {
    try {
      name = ilpErrorName(error.code);
    } catch {
      name = 'Unknown Error';
    }
  }
  return { ...error, name, forwardedBy: [...error.forwardedBy, connectorAddress] };
}

/** The ILP codes a quote fails with. */
export type QuoteErrorCode = 'F02' | 'F03' | 'R02' | 'T01' | 'T04';

/** A quote could not be given: an expected failure, a value rather than an exception. */
export interface QuoteFailure {
  kind: 'failure';
  code: QuoteErrorCode;
  message: string;
}

/** A quote failure. */
export function quoteFailure(code: QuoteErrorCode, message: string): QuoteFailure {
  return { kind: 'failure', code, message };
}

const quoteErrorStatus: Record<QuoteErrorCode, { status: grpc.status; reason: string }> = {
  F02: { status: grpc.status.NOT_FOUND, reason: 'DESTINATION_UNREACHABLE' },
  F03: { status: grpc.status.FAILED_PRECONDITION, reason: 'INVALID_AMOUNT' },
  R02: { status: grpc.status.FAILED_PRECONDITION, reason: 'INSUFFICIENT_TIMEOUT' },
  T01: { status: grpc.status.UNAVAILABLE, reason: 'NEXT_HOP_UNAVAILABLE' },
  T04: { status: grpc.status.FAILED_PRECONDITION, reason: 'INSUFFICIENT_LIQUIDITY' },
};

/** The gRPC service name used as the ErrorInfo domain of quote errors. */
export const quotingErrorDomain = 'interclear.quoting.v1.QuotingService';

/** The gRPC service name used as the ErrorInfo domain of connector status errors. */
export const connectorErrorDomain = 'interclear.connector.v1.ConnectorService';

/** The quote failure as a service error: its status, reason, and metadata ilp_code. */
export function quoteServiceError(failure: QuoteFailure): ServiceError {
  const { status, reason } = quoteErrorStatus[failure.code];
  return new ServiceError(status, reason, failure.message, { metadata: { ilp_code: failure.code } });
}

/** Whether `code` is one a quote may fail with (when reading a next hop's answer). */
export function isQuoteErrorCode(code: string): code is QuoteErrorCode {
  return Object.prototype.hasOwnProperty.call(quoteErrorStatus, code);
}
