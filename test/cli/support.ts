/**
 * The `interclear` command as a user runs it (`node bin/interclear.js …`, a child process), against
 * stand-in gRPC services in the test's own process: each test chooses what the services answer.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createCertificateAuthority, issueCertificate } from '../../src/platform/certificates';
import { ServiceError, toGrpcError } from '../../src/platform/errors';
import { serverCredentials, type TlsFiles } from '../../src/platform/tls';

const binary = path.join(__dirname, '..', '..', 'bin', 'interclear.js');

/** The environment of a command: the test's own, without INTERCLEAR_* settings that would change it. */
function commandEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('INTERCLEAR_')));
}

/** How a command ended. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `interclear <args>` to its end. Asynchronously: the services it calls run in this process,
 * and must answer meanwhile.
 */
export function runInterclear(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [binary, ...args],
      { env: { ...commandEnvironment(), ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    ),
  );
}

/** Starts `interclear <args>` with its output piped to the test. */
export function spawnInterclearCommand(args: string[]): ChildProcess {
  return spawn(process.execPath, [binary, ...args], { env: commandEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A status as a service of this system returns it (with ErrorInfo and BadRequest). */
export function serviceError(
  code: grpc.status,
  reason: string,
  message: string,
  domain: string,
  fieldViolations: Array<{ field: string; description: string }> = [],
): grpc.ServiceError {
  return toGrpcError(new ServiceError(code, reason, message, { fieldViolations }), domain);
}

/** A CA, a server certificate for 127.0.0.1, and the `admin` principal's client files. */
export async function createTestCertificates(): Promise<{ server: TlsFiles; admin: TlsFiles }> {
  const directory = mkdtempSync(path.join(tmpdir(), 'interclear-cli-'));
  const authority = await createCertificateAuthority('CLI Test CA');
  const save = (name: string, files: { certificatePem: string; privateKeyPem: string }): TlsFiles => {
    const paths = {
      certificate: path.join(directory, `${name}.crt`),
      privateKey: path.join(directory, `${name}.key`),
      authority: path.join(directory, 'ca.crt'),
    };
    writeFileSync(paths.certificate, files.certificatePem);
    writeFileSync(paths.privateKey, files.privateKeyPem, { mode: 0o600 });
    writeFileSync(paths.authority, authority.certificatePem);
    return paths;
  };
  return {
    server: save(
      'server',
      await issueCertificate(authority, { commonName: 'spsp', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
    ),
    admin: save('admin', await issueCertificate(authority, { commonName: 'admin' })),
  };
}

/** A running stand-in server. */
export interface StandInServer {
  address: string;
  stop(): Promise<void>;
}

/** Serves `services` on a free port of 127.0.0.1, over mTLS when `tls` is given. */
export async function startStandInServer(
  services: Array<{ definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }>,
  tls?: TlsFiles,
): Promise<StandInServer> {
  const server = new grpc.Server();
  for (const service of services) server.addService(service.definition, service.implementation);
  const credentials = tls ? serverCredentials(tls) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
  );
  return {
    address: `127.0.0.1:${port}`,
    stop: async () => server.forceShutdown(),
  };
}

/** The common name of the certificate the caller presented, or undefined without one. */
export function callerCommonName(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>) {
  return call.getAuthContext().sslPeerCertificate?.subject?.CN;
}
