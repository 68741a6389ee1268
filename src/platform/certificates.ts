/**
 * A small certificate authority for Interclear networks: ECDSA P-256 keys, a self-signed CA, and
 * certificates whose common name is the principal. Each certificate is valid for TLS servers and
 * clients both, because every service is a server and also a client of others.
 */
// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs the reflect polyfill.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const day = 24 * 60 * 60 * 1000;

/** A certificate and its private key, PEM-encoded. */
export interface CertificateFiles {
  certificatePem: string;
  privateKeyPem: string;
}

/** What a certificate says about its holder. */
export interface CertificateRequest {
  /** The principal: the certificate's common name. */
  commonName: string;
  /** DNS names the holder serves under (server use). */
  dnsNames?: string[];
  /** IP addresses the holder serves under (server use). */
  ipAddresses?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

/**
 * Why `name` cannot be a principal's certificate name, or undefined when it can: letters, digits,
 * `_`, `-` and `.`, starting with a letter or digit, at most 128 characters, and not `ca` (the
 * CA's own files). The name becomes the certificate's subject and its files' names, so nothing
 * else may pass: a `,` would add attributes to the subject, a `/` would write elsewhere.
 */
export function principalNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) {
    return 'must be 1 to 128 letters, digits, "_", "-" or ".", starting with a letter or digit';
  }
  if (name.toLowerCase() === 'ca') return "is the name of the CA's own files";
  return undefined;
}

function requirePrincipalName(name: string): void {
  const problem = principalNameProblem(name);
  if (problem) throw new Error(`principal "${name}" ${problem}`);
}

function randomSerial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

async function exportKey(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  const base64 = Buffer.from(pkcs8)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${base64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const base64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return (await webcrypto.subtle.importKey('pkcs8', Buffer.from(base64, 'base64'), algorithm, true, [
    'sign',
  ])) as unknown as CryptoKey;
}

/** Creates a self-signed certificate authority. */
export async function createCertificateAuthority(commonName: string, validityDays = 3650): Promise<CertificateFiles> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validityDays * day),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await exportKey(keys.privateKey) };
}

/** Issues a certificate for `request`, signed by `authority`. */
export async function issueCertificate(
  authority: CertificateFiles,
  request: CertificateRequest,
): Promise<CertificateFiles> {
  requirePrincipalName(request.commonName);
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const authorityCertificate = new x509.X509Certificate(authority.certificatePem);
  const authorityKey = await importKey(authority.privateKeyPem);
  const now = Date.now();
  const alternativeNames: x509.JsonGeneralName[] = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    await x509.AuthorityKeyIdentifierExtension.create(authorityCertificate),
  ];
  if (alternativeNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(alternativeNames));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${request.commonName}`,
    issuer: authorityCertificate.subject,
    notBefore: request.notBefore ?? new Date(now - 60_000),
    notAfter: request.notAfter ?? new Date(now + 825 * day),
    signingKey: authorityKey,
    publicKey: keys.publicKey,
    signingAlgorithm: algorithm,
    extensions,
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await exportKey(keys.privateKey) };
}

/** Paths of a principal's TLS files in a certificates directory. */
export interface TlsPaths {
  certificate: string;
  privateKey: string;
  authority: string;
}

/** Where `name`'s certificate, key and the CA live under `directory`. */
export function tlsPaths(directory: string, name: string): TlsPaths {
  return {
    certificate: path.join(directory, `${name}.crt`),
    privateKey: path.join(directory, `${name}.key`),
    authority: path.join(directory, 'ca.crt'),
  };
}

/** Loads the CA of `directory`, creating it on first use. */
export async function ensureCertificateAuthority(
  directory: string,
  commonName = 'Interclear CA',
): Promise<CertificateFiles> {
  mkdirSync(directory, { recursive: true });
  const certificate = path.join(directory, 'ca.crt');
  const key = path.join(directory, 'ca.key');
  if (existsSync(certificate) && existsSync(key)) {
    return { certificatePem: readFileSync(certificate, 'utf8'), privateKeyPem: readFileSync(key, 'utf8') };
  }
  const authority = await createCertificateAuthority(commonName);
  writeFileSync(key, authority.privateKeyPem, { mode: 0o600 });
  writeFileSync(certificate, authority.certificatePem);
  return authority;
}

/**
 * Issues (or reuses, if present and not expiring within a day) the certificate of principal
 * `request.commonName` in `directory`; returns its paths.
 */
export async function ensureCertificate(
  directory: string,
  authority: CertificateFiles,
  request: CertificateRequest,
): Promise<TlsPaths> {
  requirePrincipalName(request.commonName);
  const paths = tlsPaths(directory, request.commonName);
  if (existsSync(paths.certificate) && existsSync(paths.privateKey)) {
    const existing = new x509.X509Certificate(readFileSync(paths.certificate, 'utf8'));
    const issuedByAuthority = existing.issuer === new x509.X509Certificate(authority.certificatePem).subject;
    // Only this principal's own certificate, never a CA's, is handed out again.
    const ownName = existing.subject === `CN=${request.commonName}`;
    const isAuthority = existing.getExtension(x509.BasicConstraintsExtension)?.ca === true;
    if (issuedByAuthority && ownName && !isAuthority && existing.notAfter.getTime() > Date.now() + day) return paths;
  }
  const issued = await issueCertificate(authority, request);
  writeFileSync(paths.privateKey, issued.privateKeyPem, { mode: 0o600 });
  chmodSync(paths.privateKey, 0o600);
  writeFileSync(paths.certificate, issued.certificatePem);
  return paths;
}
