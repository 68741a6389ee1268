/**
 * The ledger's failure reasons (the five-bells vocabulary) and their gRPC codes, in one
 * exhaustive table: a reason added without a code fails the build.
 */
import * as grpc from '@grpc/grpc-js';
import { ServiceError } from '../platform/errors';

/** Why a ledger command failed, named as a fact. */
export type LedgerErrorReason =
  | 'ACCOUNT_NOT_FOUND'
  | 'TRANSFER_NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'INSUFFICIENT_FUNDS'
  | 'ACCOUNT_DISABLED'
  | 'UNMET_CONDITION'
  | 'TRANSFER_EXPIRED'
  | 'TRANSFER_NOT_CONDITIONAL'
  | 'TRANSFER_ALREADY_FINAL'
  | 'MISSING_FULFILLMENT'
  | 'ALREADY_EXISTS'
  | 'BALANCE_OVERFLOW'
  | 'DATABASE_UNAVAILABLE';

const codeByReason: Record<LedgerErrorReason, grpc.status> = {
  ACCOUNT_NOT_FOUND: grpc.status.NOT_FOUND,
  TRANSFER_NOT_FOUND: grpc.status.NOT_FOUND,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  INSUFFICIENT_FUNDS: grpc.status.FAILED_PRECONDITION,
  ACCOUNT_DISABLED: grpc.status.FAILED_PRECONDITION,
  UNMET_CONDITION: grpc.status.FAILED_PRECONDITION,
  TRANSFER_EXPIRED: grpc.status.FAILED_PRECONDITION,
  TRANSFER_NOT_CONDITIONAL: grpc.status.FAILED_PRECONDITION,
  TRANSFER_ALREADY_FINAL: grpc.status.FAILED_PRECONDITION,
  MISSING_FULFILLMENT: grpc.status.FAILED_PRECONDITION,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  BALANCE_OVERFLOW: grpc.status.FAILED_PRECONDITION,
  DATABASE_UNAVAILABLE: grpc.status.UNAVAILABLE,
};

/** The gRPC service name used as the ErrorInfo domain of every ledger error. */
export const ledgerErrorDomain = 'interclear.ledger.v1.LedgerService';

/** A ledger command failed for `reason`. */
export function ledgerError(
  reason: LedgerErrorReason,
  message: string,
  metadata?: Record<string, string>,
): ServiceError {
  return new ServiceError(codeByReason[reason], reason, message, { metadata });
}
