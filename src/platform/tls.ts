/**
 * TLS material for servers and clients. Servers ask for a client certificate but let the
 * gateway judge it, so a missing, foreign or expired certificate is a clear UNAUTHENTICATED
 * status instead of a failed handshake.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from './config';

/** Paths of a principal's certificate, key, and the CA that issued the network's certificates. */
export interface TlsFiles {
  certificate: string;
  privateKey: string;
  authority: string;
}

function read(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(key, `cannot read "${file}": ${(error as Error).message}`);
  }
}

/** How often servers reread their certificate files, so renewed certificates apply without a restart. */
const certificateRefreshMs = 60_000;

/**
 * Server credentials that request a client certificate without requiring it at the handshake:
 * grpc-js then reports only a certificate that verified against the CA and is in date, and the
 * gateway answers everything else with UNAUTHENTICATED. The files are watched, so a renewed
 * certificate (e.g. by cert-manager) is picked up without a restart.
 */
export function serverCredentials(files: TlsFiles): grpc.ServerCredentials {
  // Read once now so a wrong path fails at start with the flag's name.
  read('--tls-ca', files.authority);
  read('--tls-cert', files.certificate);
  read('--tls-key', files.privateKey);
  const identity = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: files.certificate,
    privateKeyFile: files.privateKey,
    refreshIntervalMs: certificateRefreshMs,
  });
  const authority = new grpc.experimental.FileWatcherCertificateProvider({
    caCertificateFile: files.authority,
    refreshIntervalMs: certificateRefreshMs,
  });
  return grpc.experimental.createCertificateProviderServerCredentials(identity, authority, false);
}

/** Client credentials presenting `files`' certificate and trusting its CA. */
export function channelCredentials(files: TlsFiles): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    read('--tls-ca', files.authority),
    read('--tls-key', files.privateKey),
    read('--tls-cert', files.certificate),
  );
}
