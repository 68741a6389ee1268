/**
 * The SPSP service's failure reasons and their gRPC codes, in one exhaustive table: a reason
 * added without a code fails the build. The domain throws {@link SpspError}; the gRPC layer
 * turns it into a status once, with {@link toServiceError}.
 */
import * as grpc from '@grpc/grpc-js';
import { ServiceError, type FieldViolation } from '../platform/errors';

/** Why an SPSP command failed, named as a fact. */
export type SpspErrorReason =
  | 'INVALID_ARGUMENT'
  | 'PERMISSION_DENIED'
  | 'RECEIVER_NOT_FOUND'
  | 'RECEIVER_DISABLED'
  | 'AMOUNT_BELOW_MINIMUM'
  | 'AMOUNT_ABOVE_MAXIMUM'
  | 'UNKNOWN_DFSP'
  | 'RECEIVER_DFSP_UNAVAILABLE'
  | 'RECEIVER_DFSP_REFUSED'
  | 'QUOTE_FAILED'
  | 'CONNECTOR_UNAVAILABLE'
  | 'PAYMENT_REQUEST_EXPIRES_TOO_SOON'
  | 'SOURCE_AMOUNT_ABOVE_MAXIMUM'
  | 'SENDER_ACCOUNT_NOT_FOUND'
  | 'SENDER_ACCOUNT_DISABLED'
  | 'INSUFFICIENT_FUNDS'
  | 'TRANSFER_REFUSED'
  | 'LEDGER_UNAVAILABLE'
  | 'PAYMENT_INTERRUPTED'
  | 'PAYMENT_NOT_FOUND'
  | 'INCOMING_PAYMENT_NOT_FOUND'
  | 'ALREADY_EXISTS';

const codeByReason: Record<SpspErrorReason, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  RECEIVER_NOT_FOUND: grpc.status.NOT_FOUND,
  RECEIVER_DISABLED: grpc.status.FAILED_PRECONDITION,
  AMOUNT_BELOW_MINIMUM: grpc.status.FAILED_PRECONDITION,
  AMOUNT_ABOVE_MAXIMUM: grpc.status.FAILED_PRECONDITION,
  UNKNOWN_DFSP: grpc.status.NOT_FOUND,
  RECEIVER_DFSP_UNAVAILABLE: grpc.status.UNAVAILABLE,
  RECEIVER_DFSP_REFUSED: grpc.status.FAILED_PRECONDITION,
  QUOTE_FAILED: grpc.status.FAILED_PRECONDITION,
  CONNECTOR_UNAVAILABLE: grpc.status.UNAVAILABLE,
  PAYMENT_REQUEST_EXPIRES_TOO_SOON: grpc.status.FAILED_PRECONDITION,
  SOURCE_AMOUNT_ABOVE_MAXIMUM: grpc.status.FAILED_PRECONDITION,
  SENDER_ACCOUNT_NOT_FOUND: grpc.status.NOT_FOUND,
  SENDER_ACCOUNT_DISABLED: grpc.status.FAILED_PRECONDITION,
  INSUFFICIENT_FUNDS: grpc.status.FAILED_PRECONDITION,
  TRANSFER_REFUSED: grpc.status.FAILED_PRECONDITION,
  LEDGER_UNAVAILABLE: grpc.status.UNAVAILABLE,
  PAYMENT_INTERRUPTED: grpc.status.ABORTED,
  PAYMENT_NOT_FOUND: grpc.status.NOT_FOUND,
  INCOMING_PAYMENT_NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
};

/** Whether `reason` is one of the SPSP reasons (e.g. when read back from the database). */
export function isSpspErrorReason(reason: string): reason is SpspErrorReason {
  return Object.prototype.hasOwnProperty.call(codeByReason, reason);
}

/** An expected failure of an SPSP command. */
export class SpspError extends Error {
  constructor(
    readonly reason: SpspErrorReason,
    message: string,
    readonly options: { metadata?: Record<string, string>; fieldViolations?: FieldViolation[]; cause?: unknown } = {},
  ) {
    super(message);
    this.name = 'SpspError';
  }
}

/** A request failed validation; the violations name the fields. */
export function invalidSpspArgument(violations: FieldViolation[]): SpspError {
  const summary = violations.map((violation) => `${violation.field}: ${violation.description}`).join('; ');
  return new SpspError('INVALID_ARGUMENT', summary, { fieldViolations: violations });
}

/** Collects field violations and throws them together. */
export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.list.push({ field, description });
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw invalidSpspArgument(this.list);
  }
}

/** The ErrorInfo domain of SpspService errors. */
export const spspErrorDomain = 'interclear.spsp.v1.SpspService';

/** The ErrorInfo domain of PaymentService errors. */
export const paymentErrorDomain = 'interclear.spsp.v1.PaymentService';

/** The service error a client receives for `error`; anything else passes through unchanged. */
export function toServiceError(error: unknown): unknown {
  if (!(error instanceof SpspError)) return error;
  return new ServiceError(codeByReason[error.reason], error.reason, error.message, {
    metadata: error.options.metadata,
    fieldViolations: error.options.fieldViolations,
    cause: error.options.cause,
  });
}
