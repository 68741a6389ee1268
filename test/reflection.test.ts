/**
 * Server reflection end to end: a grpc-js server with the ledger service, health and reflection,
 * driven by test/tools/grpcurl.py, an independent client that resolves every type through
 * reflection only, as grpcurl does.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { ErrorInfo } from '../src/gen/google/rpc/error_details';
import { Status } from '../src/gen/google/rpc/status';
import { HealthService } from '../src/gen/grpc/health/v1/health';
import { LedgerServiceService, type LedgerServiceServer } from '../src/gen/interclear/ledger/v1/ledger';
import { createHealthService } from '../src/platform/health';
import { addReflectionService } from '../src/platform/reflection';

/** Debian's interpreter: python3-grpcio and python3-protobuf are installed for it, not for others on PATH. */
const PYTHON = '/usr/bin/python3';
const GRPCURL = path.join(__dirname, 'tools/grpcurl.py');
const descriptorSetBytes = readFileSync(path.join(__dirname, '../src/gen/descriptors.binpb'));

/** grpcurl exits with 64 plus the status code when the RPC fails. */
const RPC_FAILURE_EXIT_CODE_OFFSET = 64;

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs grpcurl.py without blocking the event loop, which serves the RPCs it makes. */
function grpcurl(...args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [GRPCURL, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ exitCode: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

function expectSuccess(outcome: Outcome): string {
  expect({ exitCode: outcome.exitCode, stderr: outcome.stderr }).toEqual({ exitCode: 0, stderr: '' });
  return outcome.stdout;
}

/** Metadata values the ledger stub saw, so tests can check what -H sent. */
const seenTestHeaders: string[] = [];

/** Only GetLedgerInfo is implemented; grpc-js answers UNIMPLEMENTED for the methods left out. */
const ledgerStub: Pick<LedgerServiceServer, 'getLedgerInfo'> = {
  getLedgerInfo: (call, callback) => {
    seenTestHeaders.push(...call.metadata.get('x-interclear-test').map(String));
    callback(null, {
      ledger: {
        ilpPrefix: 'test.interclear.',
        currencyCode: 'USD',
        scale: 2,
        precision: 19,
        connectors: ['connector'],
        maxHoldDuration: { seconds: 30n, nanos: 500_000_000 },
      },
    });
  },
};

async function startServer(
  configure: (server: grpc.Server) => void,
  credentials = grpc.ServerCredentials.createInsecure(),
): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  configure(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

function addLedgerServer(server: grpc.Server): void {
  server.addService(LedgerServiceService, ledgerStub);
  server.addService(HealthService, createHealthService().implementation);
  addReflectionService(server, descriptorSetBytes);
}

describe('reflection seen by a grpcurl-like client', () => {
  let server: grpc.Server;
  let address: string;

  beforeAll(async () => {
    ({ server, address } = await startServer(addLedgerServer));
  });

  afterAll(() => server.forceShutdown());

  test.each(['auto', 'v1alpha', 'v1'])('lists the served services over reflection %s', async (version) => {
    const stdout = expectSuccess(await grpcurl('-plaintext', '-reflection-version', version, address, 'list'));

    expect(stdout.trim().split('\n')).toEqual([
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'interclear.ledger.v1.LedgerService',
    ]);
  });

  test("lists a service's methods", async () => {
    const stdout = expectSuccess(await grpcurl('-plaintext', address, 'list', 'interclear.ledger.v1.LedgerService'));

    const methods = stdout.trim().split('\n');
    expect(methods).toContain('interclear.ledger.v1.LedgerService.GetLedgerInfo');
    expect(methods).toContain('interclear.ledger.v1.LedgerService.Subscribe');
  });

  test('describes the ledger service, streaming included', async () => {
    const stdout = expectSuccess(
      await grpcurl('-plaintext', address, 'describe', 'interclear.ledger.v1.LedgerService'),
    );

    expect(stdout).toMatch(/^interclear\.ledger\.v1\.LedgerService is a service:\nservice LedgerService \{\n/);
    expect(stdout).toContain(
      '  rpc GetLedgerInfo ( .interclear.ledger.v1.GetLedgerInfoRequest ) returns ( .interclear.ledger.v1.GetLedgerInfoResponse );\n',
    );
    expect(stdout).toContain(
      '  rpc Subscribe ( .interclear.ledger.v1.SubscribeRequest ) returns ( stream .interclear.ledger.v1.SubscribeResponse );\n',
    );
  });

  test('describes a message that uses google.protobuf.Timestamp, the case @grpc/reflection breaks', async () => {
    const stdout = expectSuccess(await grpcurl('-plaintext', address, 'describe', 'interclear.ledger.v1.Transfer'));

    expect(stdout).toMatch(/^interclear\.ledger\.v1\.Transfer is a message:\nmessage Transfer \{\n/);
    expect(stdout).toContain('  .google.protobuf.Timestamp expiry_time = 6;\n');
    expect(stdout).toContain('  .interclear.ledger.v1.TransferState state = 7;\n');
  });

  test.each([
    ['the imported type itself', 'google.protobuf.Timestamp', 'google.protobuf.Timestamp is a message:'],
    [
      'an enum value',
      'interclear.ledger.v1.TRANSFER_STATE_PREPARED',
      'interclear.ledger.v1.TRANSFER_STATE_PREPARED is an enum value:',
    ],
    [
      'the v1alpha reflection service',
      'grpc.reflection.v1alpha.ServerReflection',
      'rpc ServerReflectionInfo ( stream .grpc.reflection.v1alpha.ServerReflectionRequest ) returns ( stream .grpc.reflection.v1alpha.ServerReflectionResponse );',
    ],
    [
      'the health service',
      'grpc.health.v1.Health',
      'rpc Watch ( .grpc.health.v1.HealthCheckRequest ) returns ( stream .grpc.health.v1.HealthCheckResponse );',
    ],
  ])('describes %s', async (_kind, symbol, expectedText) => {
    expect(expectSuccess(await grpcurl('-plaintext', address, 'describe', symbol))).toContain(expectedText);
  });

  test('fails to describe an unknown symbol, as grpcurl does', async () => {
    const outcome = await grpcurl('-plaintext', address, 'describe', 'interclear.ledger.v1.NoSuchThing');

    expect(outcome.exitCode).toBe(1);
    expect(outcome.stderr).toMatch(/^Failed to resolve symbol "interclear\.ledger\.v1\.NoSuchThing": NotFound: /);
  });

  test('invokes GetLedgerInfo and prints the response as camelCase JSON, Duration included', async () => {
    const stdout = expectSuccess(
      await grpcurl(
        '-plaintext',
        '-H',
        'X-Interclear-Test: from-grpcurl',
        address,
        'interclear.ledger.v1.LedgerService/GetLedgerInfo',
      ),
    );

    expect(JSON.parse(stdout)).toEqual({
      ledger: {
        ilpPrefix: 'test.interclear.',
        currencyCode: 'USD',
        scale: 2,
        precision: 19,
        connectors: ['connector'],
        maxHoldDuration: '30.500s',
      },
    });
    expect(seenTestHeaders).toContain('from-grpcurl');
  });

  test('invokes Health/Check with a JSON request', async () => {
    const stdout = expectSuccess(
      await grpcurl('-plaintext', '-d', '{"service": ""}', address, 'grpc.health.v1.Health/Check'),
    );

    expect(JSON.parse(stdout)).toEqual({ status: 'SERVING' });
  });

  test('prints a failed RPC like grpcurl and exits with 64 plus its code', async () => {
    const outcome = await grpcurl(
      '-plaintext',
      '-d',
      '{"service": "no.such.Service"}',
      address,
      'grpc.health.v1.Health/Check',
    );

    expect(outcome.exitCode).toBe(RPC_FAILURE_EXIT_CODE_OFFSET + grpc.status.NOT_FOUND);
    expect(outcome.stdout).toBe('');
    expect(outcome.stderr).toBe('ERROR:\n  Code: NotFound\n  Message: unknown service: no.such.Service\n');
  });

  test('reports UNIMPLEMENTED for a ledger method the stub leaves out', async () => {
    const outcome = await grpcurl('-plaintext', '-d', '{}', address, 'interclear.ledger.v1.LedgerService/GetAccount');

    expect(outcome.exitCode).toBe(RPC_FAILURE_EXIT_CODE_OFFSET + grpc.status.UNIMPLEMENTED);
    expect(outcome.stderr).toMatch(/^ERROR:\n {2}Code: Unimplemented\n/);
  });

  test('refuses a request body with a field the message does not have', async () => {
    const outcome = await grpcurl('-plaintext', '-d', '{"serviceName": ""}', address, 'grpc.health.v1.Health/Check');

    expect(outcome.exitCode).toBe(1);
    expect(outcome.stderr).toMatch(/^Failed to create request: .*serviceName/);
  });
});

describe('error details seen by a grpcurl-like client', () => {
  test('prints the google.rpc.Status details of a failed RPC, resolved through reflection', async () => {
    const errorInfo = ErrorInfo.encode({
      reason: 'ACCOUNT_NOT_FOUND',
      domain: 'interclear.ledger.v1.LedgerService',
      metadata: { account: 'alice' },
    }).finish();
    const status = Status.encode({
      code: grpc.status.NOT_FOUND,
      message: 'account alice not found',
      details: [{ typeUrl: 'type.googleapis.com/google.rpc.ErrorInfo', value: Buffer.from(errorInfo) }],
    }).finish();
    const failingLedger: Pick<LedgerServiceServer, 'getAccount'> = {
      getAccount: (_call, callback) => {
        const metadata = new grpc.Metadata();
        metadata.set('grpc-status-details-bin', Buffer.from(status));
        callback({ code: grpc.status.NOT_FOUND, details: 'account alice not found', metadata });
      },
    };
    const { server, address } = await startServer((newServer) => {
      newServer.addService(LedgerServiceService, failingLedger);
      addReflectionService(newServer, descriptorSetBytes);
    });
    try {
      const outcome = await grpcurl(
        '-plaintext',
        '-d',
        '{"name": "alice"}',
        address,
        'interclear.ledger.v1.LedgerService/GetAccount',
      );

      expect(outcome.exitCode).toBe(RPC_FAILURE_EXIT_CODE_OFFSET + grpc.status.NOT_FOUND);
      expect(outcome.stderr).toMatch(
        /^ERROR:\n {2}Code: NotFound\n {2}Message: account alice not found\n {2}Details:\n {2}1\)\t\{\n/,
      );
      expect(outcome.stderr).toContain('"@type": "type.googleapis.com/google.rpc.ErrorInfo"');
      expect(outcome.stderr).toContain('"reason": "ACCOUNT_NOT_FOUND"');
      expect(outcome.stderr).toContain('"account": "alice"');
    } finally {
      server.forceShutdown();
    }
  });
});

describe('the grpcurl-like client is as strict as grpcurl', () => {
  test('fails with "cannot resolve type" when reflection drops the dependency list, as @grpc/reflection does', async () => {
    const descriptorSet = fromBinary(FileDescriptorSetSchema, descriptorSetBytes);
    const withoutDependencies = create(FileDescriptorSetSchema, {
      file: descriptorSet.file.map((file) =>
        file.name === 'interclear/ledger/v1/ledger.proto' ? { ...file, dependency: [] } : file,
      ),
    });
    const { server, address } = await startServer((newServer) => {
      newServer.addService(LedgerServiceService, ledgerStub);
      addReflectionService(newServer, withoutDependencies);
    });
    try {
      const outcome = await grpcurl('-plaintext', address, 'describe', 'interclear.ledger.v1.Transfer');

      expect(outcome.exitCode).toBe(1);
      expect(outcome.stderr).toMatch(/^Failed to load "interclear\/ledger\/v1\/ledger\.proto": cannot resolve type: /);
      expect(outcome.stderr).toContain(
        'interclear.ledger.v1.Transfer.expiry_time: ".google.protobuf.Timestamp" is not defined.',
      );
    } finally {
      server.forceShutdown();
    }
  });
});

describe('reflection over mutual TLS', () => {
  let directory: string;

  beforeAll(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'interclear-reflection-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: directory, stdio: 'pipe' });
    openssl(
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=interclear test CA'],
    );
    writeFileSync(path.join(directory, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    writeFileSync(path.join(directory, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const name of ['server', 'client']) {
      openssl(
        ...['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
        ...['-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
      );
      openssl(
        ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
        ...['-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`],
      );
    }
  });

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test('lists services and invokes a method with -cacert, -cert and -key', async () => {
    const file = (name: string) => path.join(directory, name);
    const credentials = grpc.ServerCredentials.createSsl(
      readFileSync(file('ca.pem')),
      [{ private_key: readFileSync(file('server.key')), cert_chain: readFileSync(file('server.pem')) }],
      true,
    );
    const { server, address } = await startServer(addLedgerServer, credentials);
    const tlsFlags = ['-cacert', file('ca.pem'), '-cert', file('client.pem'), '-key', file('client.key')];
    try {
      const listed = expectSuccess(await grpcurl(...tlsFlags, address, 'list'));
      const checked = expectSuccess(await grpcurl(...tlsFlags, address, 'grpc.health.v1.Health/Check'));
      const withoutClientCertificate = await grpcurl(
        '-cacert',
        file('ca.pem'),
        '-connect-timeout',
        '1',
        address,
        'list',
      );

      expect(listed).toContain('interclear.ledger.v1.LedgerService\n');
      expect(JSON.parse(checked)).toEqual({ status: 'SERVING' });
      expect(withoutClientCertificate.exitCode).toBe(1);
      expect(withoutClientCertificate.stderr).toContain('Failed to dial target host');
    } finally {
      server.forceShutdown();
    }
  });
});
