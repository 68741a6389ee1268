/**
 * The one error type of Interclear's services and its mapping to a gRPC status with
 * google.rpc.Status details (ErrorInfo, BadRequest) in the `grpc-status-details-bin` trailer.
 */
import * as grpc from '@grpc/grpc-js';
import { Any } from '../gen/google/protobuf/any';
import { BadRequest, ErrorInfo } from '../gen/google/rpc/error_details';
import { Status } from '../gen/google/rpc/status';

/** One invalid field of a request. */
export interface FieldViolation {
  /** Path of the field in the request, e.g. "amount" or "ilp_error.code". */
  field: string;
  /** Why the value is invalid, for a developer. */
  description: string;
}

/**
 * An expected failure of a command: a reason named as a fact (UPPER_SNAKE_CASE), a message for a
 * developer, and for validation the bad fields. `cause` is logged, never sent.
 */
export class ServiceError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly reason: string,
    message: string,
    readonly options: { fieldViolations?: FieldViolation[]; metadata?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

/** A request failed validation; the violations say which fields and why. */
export function invalidArgument(violations: FieldViolation[]): ServiceError {
  return new ServiceError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', describeViolations(violations), {
    fieldViolations: violations,
  });
}

/** The message of a validation error: "field: why; field: why". */
function describeViolations(violations: Array<Pick<FieldViolation, 'field' | 'description'>>): string {
  // A violation of the whole request (no field) reads as its description alone.
  return violations
    .map((violation) =>
      violation.field === '' ? violation.description : `${violation.field}: ${violation.description}`,
    )
    .join('; ');
}

/** Trailing metadata carrying `status` as grpc-status-details-bin. */
function statusMetadata(status: Status): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(Status.encode(status).finish()));
  return metadata;
}

const errorInfoTypeUrl = 'type.googleapis.com/google.rpc.ErrorInfo';
const badRequestTypeUrl = 'type.googleapis.com/google.rpc.BadRequest';

/** The google.rpc.Status of `error`: its code, message, ErrorInfo (domain = `domain`) and BadRequest. */
export function toStatus(error: ServiceError, domain: string): Status {
  const details: Any[] = [
    {
      typeUrl: errorInfoTypeUrl,
      value: Buffer.from(
        ErrorInfo.encode({ reason: error.reason, domain, metadata: error.options.metadata ?? {} }).finish(),
      ),
    },
  ];
  if (error.options.fieldViolations?.length) {
    const badRequest = BadRequest.encode({
      fieldViolations: error.options.fieldViolations.map((violation) => ({
        field: violation.field,
        description: violation.description,
        reason: 'INVALID_VALUE',
      })),
    }).finish();
    details.push({ typeUrl: badRequestTypeUrl, value: Buffer.from(badRequest) });
  }
  return { code: error.code, message: error.message, details };
}

/** Builds the grpc-js error object for `error`, with its status details in the trailer. */
export function toGrpcError(error: ServiceError, domain: string): grpc.ServiceError {
  return Object.assign(new Error(error.message), {
    code: error.code,
    details: error.message,
    metadata: statusMetadata(toStatus(error, domain)),
  }) as grpc.ServiceError;
}

/**
 * The same error about one item of a batch call: a validation error (the only kind with field
 * violations, always INVALID_ARGUMENT) gets its field paths, and so its message, prefixed with
 * the item's place in the request, e.g. "transfers[3].amount"; other errors are returned as they are.
 */
export function forBatchItem(error: ServiceError, list: string, index: number): ServiceError {
  const violations = error.options.fieldViolations;
  if (!violations?.length) return error;
  const prefixed = violations.map((violation) => ({ ...violation, field: `${list}[${index}].${violation.field}` }));
  return invalidArgument(prefixed);
}

/** What a client learns from a failed call's status details. */
export interface DecodedError {
  code: grpc.status;
  message: string;
  reason?: string;
  domain?: string;
  metadata: Record<string, string>;
  fieldViolations: FieldViolation[];
}

/** Reads ErrorInfo and BadRequest back from an error returned by a grpc-js client. */
export function decodeGrpcError(error: grpc.ServiceError): DecodedError {
  const decoded: DecodedError = {
    code: error.code,
    message: error.details ?? error.message,
    metadata: {},
    fieldViolations: [],
  };
  const raw = error.metadata?.get('grpc-status-details-bin')?.[0];
  if (!raw) return decoded;
  return decodeStatus(Status.decode(typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw));
}

/** Reads ErrorInfo and BadRequest from a google.rpc.Status (a trailer, or a batch item's error). */
export function decodeStatus(status: Status): DecodedError {
  const decoded: DecodedError = { code: status.code, message: status.message, metadata: {}, fieldViolations: [] };
  for (const detail of status.details) {
    if (detail.typeUrl === errorInfoTypeUrl) {
      const info = ErrorInfo.decode(detail.value);
      decoded.reason = info.reason;
      decoded.domain = info.domain;
      decoded.metadata = info.metadata;
    } else if (detail.typeUrl === badRequestTypeUrl) {
      decoded.fieldViolations = BadRequest.decode(detail.value).fieldViolations.map((violation) => ({
        field: violation.field,
        description: violation.description,
      }));
    }
  }
  return decoded;
}

/**
 * The grpc-js error a client would have received for `status` (a batch item's error), so that
 * code written for single calls reads it unchanged. `itemPrefix` (e.g. "transfers[3].") is
 * removed from field paths, and the validation message rebuilt, as the single call reports them.
 */
export function grpcErrorFromStatus(status: Status, itemPrefix?: string): grpc.ServiceError {
  let message = status.message;
  let details = status.details;
  if (itemPrefix) {
    details = status.details.map((detail) => {
      if (detail.typeUrl !== badRequestTypeUrl) return detail;
      const badRequest = BadRequest.decode(detail.value);
      for (const violation of badRequest.fieldViolations) {
        if (violation.field.startsWith(itemPrefix)) violation.field = violation.field.slice(itemPrefix.length);
      }
      if (status.code === grpc.status.INVALID_ARGUMENT) message = describeViolations(badRequest.fieldViolations);
      return { typeUrl: detail.typeUrl, value: Buffer.from(BadRequest.encode(badRequest).finish()) };
    });
  }
  return Object.assign(new Error(`${status.code} ${grpc.status[status.code] ?? 'UNKNOWN'}: ${message}`), {
    code: status.code,
    details: message,
    metadata: statusMetadata({ code: status.code, message, details }),
  }) as grpc.ServiceError;
}
