/**
 * What a failed call tells the person at the command line: the service's reason and message
 * when it answered (`INSUFFICIENT_FUNDS: …`), and when it could not be reached, which address,
 * why, and what to check — instead of grpc-js's transport text ("code 14: No connection
 * established. Last error: … Resolution note: ").
 */
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError } from '../platform/errors';

/** Who a command called, for the message when it could not be reached. */
export interface CallTarget {
  /** e.g. "the ledger", "the SPSP service" */
  service: string;
  address: string;
  /** The flag that names the address, e.g. "--ledger". */
  flag?: string;
}

/** The transport's own words, without grpc-js's framing. */
function transportDetail(details: string): string {
  return details
    .replace(/^No connection established\. Last error: /, '')
    .replace(/^(Error: )+/, '')
    .replace(/\.?\s*Resolution note:\s*$/, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)$/, '')
    .trim();
}

/** What to check for a service that could not be reached, from the transport's words. */
function hint(detail: string, target: CallTarget | undefined): string {
  const where = target?.flag ? ` (${target.flag})` : '';
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT/.test(detail)) {
    return (
      `is it running, and is this its address${where}? A local network's addresses are in ` +
      '.interclear/network/network.json (npm start prints them)'
    );
  }
  if (/Failed to connect|handshake|SSL|TLS|wrong version number|certificate|ECONNRESET|socket hang up/i.test(detail)) {
    return (
      'the connection was refused during setup: the server may expect mTLS (give --tls-cert, --tls-key ' +
      'and --tls-ca) or plaintext (--insecure server: give no TLS flags), or not trust this certificate'
    );
  }
  return `check that it is running and reachable${where}`;
}

/** A one-line (or few-line) error for a failed call; `error` unchanged if it is not a gRPC failure. */
export function describeCallFailure(error: unknown, target?: CallTarget): unknown {
  const grpcError = error as grpc.ServiceError;
  if (typeof grpcError?.code !== 'number') return error;
  const decoded = decodeGrpcError(grpcError);
  const who = target ? `${target.service} at ${target.address}` : 'the service';
  if (decoded.reason === undefined && grpcError.code === grpc.status.UNAVAILABLE) {
    const detail = transportDetail(decoded.message);
    return new Error(`cannot reach ${who}: ${detail}; ${hint(detail, target)}`);
  }
  if (decoded.reason === undefined && grpcError.code === grpc.status.DEADLINE_EXCEEDED) {
    return new Error(`${who} did not answer in time (DEADLINE_EXCEEDED): ${decoded.message}`);
  }
  const ilpCode = decoded.metadata.ilp_code ? ` (ILP ${decoded.metadata.ilp_code})` : '';
  // Each violation on a line of its own, unless the message already is that violation.
  const violations = decoded.fieldViolations
    .map((violation) => `${violation.field}: ${violation.description}`)
    .filter((violation) => !decoded.message.includes(violation))
    .map((violation) => `\n  ${violation}`);
  const label = decoded.reason ?? grpc.status[grpcError.code] ?? `code ${grpcError.code}`;
  return new Error(`${label}${ilpCode}: ${decoded.message}${violations.join('')}`);
}

/** Runs a client call, turning a gRPC failure into an error that says what went wrong. */
export async function withCall<T>(action: () => Promise<T>, target?: CallTarget): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw describeCallFailure(error, target);
  }
}
