/**
 * TLS material for servers and clients. Servers ask for a client certificate but let the
 * gateway judge it, so a missing, foreign or expired certificate is a clear UNAUTHENTICATED
 * status instead of a failed handshake.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
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

/**
 * Reads the three files and checks that they make a usable identity (the key belongs to the
 * certificate, each file parses), so that a wrong path or a mismatched pair fails at start with
 * the flag's name and the cause, before anything else has started.
 *
 * @returns the files' contents: the CA, the key and the certificate.
 */
export function checkTlsFiles(files: TlsFiles): { authority: Buffer; privateKey: Buffer; certificate: Buffer } {
  const authority = read('--tls-ca', files.authority);
  const certificate = read('--tls-cert', files.certificate);
  const privateKey = read('--tls-key', files.privateKey);
  try {
    createSecureContext({ ca: authority, cert: certificate, key: privateKey });
  } catch (error) {
    const message = (error as Error).message;
    if (/key values mismatch/.test(message)) {
      throw new ConfigError(
        '--tls-key',
        `"${files.privateKey}" is not the key of the certificate "${files.certificate}" (--tls-cert): give the key issued with it`,
      );
    }
    throw new ConfigError(
      '--tls-cert',
      `cannot use "${files.certificate}", "${files.privateKey}" and "${files.authority}" as certificate, key and CA: ${message}`,
    );
  }
  return { authority, privateKey, certificate };
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
  // Checked once now so a wrong path or pair fails at start with the flag's name.
  checkTlsFiles(files);
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
  const { authority, privateKey, certificate } = checkTlsFiles(files);
  return grpc.credentials.createSsl(authority, privateKey, certificate);
}
