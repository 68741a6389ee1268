/**
 * Who is calling. In insecure development mode the principal is taken from the `x-principal`
 * request header; with mTLS (the gateway) it is the client certificate's identity.
 */
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { Principal } from '../ledger/model';
import { ServiceError } from './errors';

/** The metadata header carrying the principal in insecure development mode. */
export const principalHeader = 'x-principal';

/** How a server learns its callers' identities. */
export interface PrincipalResolverOptions {
  /** Plaintext development mode: trust the x-principal header. */
  insecure: boolean;
  /** Principals with administrator rights. */
  admins: string[];
}

/** Anything with request metadata: a unary call or a stream. */
type CallWithMetadata = { metadata: grpc.Metadata; getPeer?: () => string };

/** Resolves the caller of `call`, or throws UNAUTHENTICATED. */
export type PrincipalResolver = (call: CallWithMetadata) => Principal;

export function createPrincipalResolver(options: PrincipalResolverOptions): PrincipalResolver {
  const admins = new Set(options.admins);
  return (call) => {
    if (!options.insecure) {
      throw new ServiceError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', 'a client certificate is required');
    }
    const values = call.metadata.get(principalHeader);
    const name = typeof values[0] === 'string' ? values[0].trim() : '';
    if (name === '' || name.length > 256) {
      throw new ServiceError(
        status.UNAUTHENTICATED,
        'UNAUTHENTICATED',
        `insecure mode: send the caller's principal in the "${principalHeader}" header`,
      );
    }
    return { name, isAdmin: admins.has(name) };
  };
}
