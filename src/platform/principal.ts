/**
 * Who is calling. With mTLS (the default) the principal is the verified client certificate's
 * identity: its common name, or else its first URI subject alternative name. In insecure
 * development mode it is taken from the `x-principal` request header instead.
 */
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { Principal } from '../ledger/model';
import { requestContext } from './context';
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

/** Anything with request metadata and, over TLS, an auth context: a call or a stream. */
export type CallWithIdentity = {
  metadata: grpc.Metadata;
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate };
  /**
   * An object that lives exactly as long as the caller's connection (grpc-js's HTTP/2 session),
   * when the caller can reach it: the principal of its verified certificate is kept on it.
   */
  connection?: object;
};

/** Resolves the caller of `call`, or throws UNAUTHENTICATED. */
export type PrincipalResolver = (call: CallWithIdentity) => Principal;

/** The principal a verified certificate names: CN, else the last path segment of a URI SAN. */
export function principalFromCertificate(certificate: PeerCertificate): string | undefined {
  const commonName = certificate.subject?.CN;
  if (typeof commonName === 'string' && commonName !== '') return commonName;
  const uri = certificate.subjectaltname
    ?.split(',')
    .map((entry) => entry.trim())
    .find((entry) => entry.startsWith('URI:'));
  if (!uri) return undefined;
  const segments = uri.slice(4).split('/').filter(Boolean);
  return segments[segments.length - 1];
}

function unauthenticated(message: string): ServiceError {
  return new ServiceError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', message);
}

/** What the TLS layer of a connection says of a client certificate it did not verify. */
interface UnverifiedPeer {
  authorizationError?: Error | string | null;
  getPeerCertificate?: () => PeerCertificate | undefined;
}

// Node's (OpenSSL's) codes for a certificate that does not chain to the CA the server trusts.
const foreignIssuerCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * Why a connection has no verified client certificate, in words its owner can act on: none was
 * sent, it is not issued by this network's CA, it expired or is not valid yet (the certificate's
 * own subject, issuer and dates are named: they are the caller's, nothing of the server's).
 */
export function unverifiedCertificateMessage(connection: object | undefined): string {
  const socket = (connection as { socket?: UnverifiedPeer } | undefined)?.socket;
  let certificate: PeerCertificate | undefined;
  try {
    certificate = socket?.getPeerCertificate?.();
  } catch {
    certificate = undefined;
  }
  if (!certificate?.raw) {
    return "no client certificate was sent: this server requires one issued by this network's CA (mTLS)";
  }
  // The caller's own names, echoed back and logged: bounded, whatever the certificate holds.
  const name = (value: unknown) =>
    typeof value === 'string' && value !== ''
      ? `CN=${value.length > 128 ? `${value.slice(0, 128)}…` : value}`
      : 'no CN';
  const subject = name(certificate.subject?.CN);
  const issuer = name(certificate.issuer?.CN);
  const error = socket?.authorizationError;
  const code = typeof error === 'string' ? error : ((error as { code?: string } | null | undefined)?.code ?? '');
  if (code === 'CERT_HAS_EXPIRED') {
    // The code covers the whole chain: the certificate itself, or the CA that issued it.
    const ownExpiry = Date.parse(certificate.valid_to);
    if (!Number.isNaN(ownExpiry) && ownExpiry < Date.now()) {
      return `the client certificate (${subject}) expired on ${certificate.valid_to}: renew it`;
    }
    return `a certificate in the client's chain (${subject}, issued by ${issuer}) has expired: renew the expired one`;
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return `the client certificate (${subject}) is not valid before ${certificate.valid_from} (check its dates and this host's clock)`;
  }
  if (foreignIssuerCodes.has(code)) {
    return `the client certificate (${subject}, issued by ${issuer}) is not issued by this network's CA`;
  }
  return `the client certificate (${subject}, issued by ${issuer}) was not accepted${code ? ` (${code})` : ''}: a valid one issued by this network's CA is required`;
}

export function createPrincipalResolver(options: PrincipalResolverOptions): PrincipalResolver {
  const admins = new Set(options.admins);
  const remember = (name: string): Principal => {
    const store = requestContext.getStore();
    if (store) store.principal = name;
    return { name, isAdmin: admins.has(name) };
  };
  if (!options.insecure) {
    // Reading the peer certificate costs a parse of it on every call; its principal cannot
    // change during a TLS connection, so it is kept per connection, and per call (the gateway
    // and then the handler ask for the same call's principal).
    const byConnection = new WeakMap<object, string>();
    const byCall = new WeakMap<grpc.Metadata, string>();
    return (call) => {
      let name = byCall.get(call.metadata) ?? (call.connection ? byConnection.get(call.connection) : undefined);
      if (name === undefined) {
        // grpc-js only reports a peer certificate that verified against our CA and was in date
        // at the handshake.
        const certificate = call.getAuthContext?.().sslPeerCertificate;
        if (!certificate) throw unauthenticated(unverifiedCertificateMessage(call.connection));
        name = principalFromCertificate(certificate);
        if (!name || name.length > 256)
          throw unauthenticated('the client certificate names no principal (CN or URI SAN)');
        if (call.connection) byConnection.set(call.connection, name);
      }
      byCall.set(call.metadata, name);
      return remember(name);
    };
  }
  return (call) => {
    const values = call.metadata.get(principalHeader);
    const name = typeof values[0] === 'string' ? values[0].trim() : '';
    if (name === '' || name.length > 256) {
      throw unauthenticated(`insecure mode: send the caller's principal in the "${principalHeader}" header`);
    }
    return remember(name);
  };
}
