/**
 * The gateway with real certificates over real TLS: who is let in (UNAUTHENTICATED otherwise)
 * and what each principal may do (PERMISSION_DENIED otherwise), method by method.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import { createCertificateAuthority, issueCertificate, type CertificateFiles } from '../../src/platform/certificates';
import { decodeGrpcError } from '../../src/platform/errors';
import { channelCredentials, type TlsFiles } from '../../src/platform/tls';
import { newId, startTestLedger, type TestLedger } from '../support/ledger';

const directory = mkdtempSync(path.join(tmpdir(), 'interclear-gateway-'));
let authority: CertificateFiles;
let ledger: TestLedger;
const clients = new Map<string, LedgerClient>();

function save(name: string, files: CertificateFiles, authorityPem: string): TlsFiles {
  const paths = {
    certificate: path.join(directory, `${name}.crt`),
    privateKey: path.join(directory, `${name}.key`),
    authority: path.join(directory, `${name}-ca.crt`),
  };
  writeFileSync(paths.certificate, files.certificatePem);
  writeFileSync(paths.privateKey, files.privateKeyPem);
  writeFileSync(paths.authority, authorityPem);
  return paths;
}

async function clientFor(name: string, files: CertificateFiles, authorityPem = authority.certificatePem) {
  const client = createLedgerClient(ledger.ledger.address, {
    credentials: channelCredentials(save(name, files, authorityPem)),
  });
  clients.set(name, client);
  return client;
}

async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code];
  }
}

/** The reason and message a refused call carries. */
async function refusalOf(call: Promise<unknown>): Promise<{ reason?: string; message: string } | 'OK'> {
  try {
    await call;
    return 'OK';
  } catch (error) {
    const { reason, message } = decodeGrpcError(error as grpc.ServiceError);
    return { reason, message };
  }
}

const principals: Record<string, LedgerClient> = {};

beforeAll(async () => {
  authority = await createCertificateAuthority('Gateway Test CA');
  const serverFiles = save(
    'ledger',
    await issueCertificate(authority, { commonName: 'ledger', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
    authority.certificatePem,
  );
  ledger = await startTestLedger({ insecure: false, tls: serverFiles, admins: ['operator'] });
  for (const name of ['operator', 'alice', 'bob', 'mallory']) {
    principals[name] = await clientFor(name, await issueCertificate(authority, { commonName: name }));
  }
  const operator = principals.operator;
  await operator.createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: false, disabled: false });
  await operator.createAccount({ name: 'bob', owner: 'bob', minimumBalanceUnlimited: false, disabled: false });
  await operator.deposit({ depositId: newId(), account: 'alice', amount: 100_000n, externalReference: 'seed' });
});

afterAll(async () => {
  for (const client of clients.values()) client.close();
  await ledger.stop();
});

describe('authentication', () => {
  test('a valid certificate is the principal, whatever x-principal header it sends', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-principal', 'operator');
    // alice pretends to be the operator through the development header: she stays alice.
    const outcome = await codeOf(
      principals.alice.createAccount(
        { name: 'sneaky', owner: 'alice', minimumBalanceUnlimited: false, disabled: false },
        { metadata },
      ),
    );
    expect(outcome).toBe('PERMISSION_DENIED');
  });

  test('the certificate is read once per connection, and each connection keeps its own principal', async () => {
    // Warm both connections, then count how often the server parses a peer certificate.
    await principals.alice.getAccount({ name: 'alice' });
    await principals.bob.getAccount({ name: 'bob' });
    const reads = jest.spyOn(TLSSocket.prototype, 'getPeerCertificate');
    try {
      for (let index = 0; index < 10; index += 1) {
        expect(await codeOf(principals.alice.getAccount({ name: 'alice' }))).toBe('OK');
        expect(await codeOf(principals.bob.getAccount({ name: 'alice' }))).toBe('PERMISSION_DENIED');
        expect(await codeOf(principals.bob.getAccount({ name: 'bob' }))).toBe('OK');
      }
      expect(reads).not.toHaveBeenCalled();
      // A new connection with another certificate is judged by its own certificate.
      const carol = await clientFor('carol', await issueCertificate(authority, { commonName: 'carol' }));
      expect(await codeOf(carol.getAccount({ name: 'alice' }))).toBe('PERMISSION_DENIED');
      // (The handshake reads certificates too, on both sides: this process is also the client.)
      expect(reads).toHaveBeenCalled();
      const afterHandshake = reads.mock.calls.length;
      for (let index = 0; index < 10; index += 1) {
        expect(await codeOf(carol.getAccount({ name: 'bob' }))).toBe('PERMISSION_DENIED');
      }
      expect(reads).toHaveBeenCalledTimes(afterHandshake);
    } finally {
      reads.mockRestore();
    }
  });

  test('no client certificate → UNAUTHENTICATED', async () => {
    const anonymous = createLedgerClient(ledger.ledger.address, {
      credentials: grpc.credentials.createSsl(Buffer.from(authority.certificatePem)),
    });
    clients.set('anonymous', anonymous);
    const failure = await anonymous.getLedgerInfo({}).catch((error: grpc.ServiceError) => error);
    expect((failure as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(decodeGrpcError(failure as grpc.ServiceError)).toMatchObject({
      reason: 'UNAUTHENTICATED',
      message: "no client certificate was sent: this server requires one issued by this network's CA (mTLS)",
    });
  });

  test('a certificate from another CA → UNAUTHENTICATED', async () => {
    const foreign = await createCertificateAuthority('Somebody Else');
    const client = await clientFor('foreign', await issueCertificate(foreign, { commonName: 'operator' }));
    expect(await refusalOf(client.getLedgerInfo({}))).toEqual({
      reason: 'UNAUTHENTICATED',
      message: "the client certificate (CN=operator, issued by CN=Somebody Else) is not issued by this network's CA",
    });
  });

  test('an expired certificate → UNAUTHENTICATED', async () => {
    const expired = await issueCertificate(authority, {
      commonName: 'operator',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const client = await clientFor('expired', expired);
    expect(await refusalOf(client.getLedgerInfo({}))).toEqual({
      reason: 'UNAUTHENTICATED',
      message: expect.stringMatching(/^the client certificate \(CN=operator\) expired on .+ GMT: renew it$/),
    });
  });

  test('reflection and health stay usable by authenticated callers, and refuse others', async () => {
    const health = (credentials: grpc.ChannelCredentials) =>
      new Promise<number>((resolve) => {
        const client = new grpc.Client(ledger.ledger.address, credentials);
        client.makeUnaryRequest(
          '/grpc.health.v1.Health/Check',
          (value: Buffer) => value,
          (value: Buffer) => value,
          Buffer.alloc(0),
          (error) => {
            client.close();
            resolve(error ? error.code : grpc.status.OK);
          },
        );
      });
    const aliceFiles = {
      certificate: path.join(directory, 'alice.crt'),
      privateKey: path.join(directory, 'alice.key'),
      authority: path.join(directory, 'alice-ca.crt'),
    };
    expect(await health(channelCredentials(aliceFiles))).toBe(grpc.status.OK);
    expect(await health(grpc.credentials.createSsl(Buffer.from(authority.certificatePem)))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
  });
});

describe('authorization: method × caller', () => {
  const condition = () => createHash('sha256').update(randomBytes(32)).digest();
  const prepared = async () => {
    const transferId = newId();
    await principals.alice.prepareTransfer({
      transferId,
      debitAccount: 'alice',
      creditAccount: 'bob',
      amount: 1n,
      executionCondition: condition(),
      expiryTime: new Date(Date.now() + 20_000),
      ilpPacket: Buffer.alloc(0),
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    return transferId;
  };
  const ilpError = { code: 'F99', name: 'Test', message: '', triggeredBy: '', forwardedBy: [], data: Buffer.alloc(0) };

  const calls: Record<string, (client: LedgerClient) => Promise<unknown>> = {
    CreateAccount: (client) =>
      client.createAccount({
        name: `x${randomBytes(4).toString('hex')}`,
        owner: 'x',
        minimumBalanceUnlimited: false,
        disabled: false,
      }),
    UpdateAccount: (client) => client.updateAccount({ name: 'bob', disabled: false }),
    Deposit: (client) => client.deposit({ depositId: newId(), account: 'bob', amount: 1n, externalReference: 'r' }),
    Withdraw: (client) =>
      client.withdraw({ withdrawalId: newId(), account: 'alice', amount: 1n, externalReference: 'r' }),
    'PrepareTransfer (from alice)': (client) =>
      client.prepareTransfer({
        transferId: newId(),
        debitAccount: 'alice',
        creditAccount: 'bob',
        amount: 1n,
        executionCondition: condition(),
        expiryTime: new Date(Date.now() + 20_000),
        ilpPacket: Buffer.alloc(0),
        memo: Buffer.alloc(0),
        traceParent: '',
      }),
    'FulfillTransfer (to bob)': async (client) =>
      client.fulfillTransfer({ transferId: await prepared(), fulfillment: randomBytes(32) }),
    'RejectTransfer (to bob)': async (client) => client.rejectTransfer({ transferId: await prepared(), ilpError }),
    'GetAccount (alice)': (client) => client.getAccount({ name: 'alice' }),
    'SendMessage (from alice)': (client) =>
      client.sendMessage({ messageId: newId(), fromAccount: 'alice', toAccount: 'bob', data: Buffer.from('hi') }),
    'Subscribe (alice)': (client) =>
      new Promise((resolve, reject) => {
        const stream = client.subscribe({ accounts: ['alice'] });
        stream.on('data', () => {
          stream.cancel();
          resolve(undefined);
        });
        stream.on('error', (error: grpc.ServiceError) =>
          error.code === grpc.status.CANCELLED ? undefined : reject(error),
        );
      }),
  };

  // Fulfilling with a random preimage passes authorization and then fails the condition: the
  // point is which callers get past the gate.
  const table: Array<[string, string, string]> = [
    ['CreateAccount', 'operator', 'OK'],
    ['CreateAccount', 'alice', 'PERMISSION_DENIED'],
    ['UpdateAccount', 'operator', 'OK'],
    ['UpdateAccount', 'bob', 'PERMISSION_DENIED'],
    ['Deposit', 'operator', 'OK'],
    ['Deposit', 'alice', 'PERMISSION_DENIED'],
    ['Withdraw', 'operator', 'OK'],
    ['Withdraw', 'alice', 'PERMISSION_DENIED'],
    ['PrepareTransfer (from alice)', 'alice', 'OK'],
    ['PrepareTransfer (from alice)', 'mallory', 'PERMISSION_DENIED'],
    ['PrepareTransfer (from alice)', 'bob', 'PERMISSION_DENIED'],
    ['FulfillTransfer (to bob)', 'bob', 'FAILED_PRECONDITION'],
    ['FulfillTransfer (to bob)', 'alice', 'PERMISSION_DENIED'],
    ['FulfillTransfer (to bob)', 'mallory', 'PERMISSION_DENIED'],
    ['RejectTransfer (to bob)', 'bob', 'OK'],
    ['RejectTransfer (to bob)', 'alice', 'PERMISSION_DENIED'],
    ['RejectTransfer (to bob)', 'mallory', 'PERMISSION_DENIED'],
    ['GetAccount (alice)', 'alice', 'OK'],
    ['GetAccount (alice)', 'mallory', 'PERMISSION_DENIED'],
    ['SendMessage (from alice)', 'alice', 'OK'],
    ['SendMessage (from alice)', 'mallory', 'PERMISSION_DENIED'],
    ['Subscribe (alice)', 'alice', 'OK'],
    ['Subscribe (alice)', 'operator', 'OK'],
    ['Subscribe (alice)', 'mallory', 'PERMISSION_DENIED'],
  ];

  test.each(table)('%s by %s → %s', async (method, caller, expected) => {
    expect(await codeOf(calls[method](principals[caller]))).toBe(expected);
  });
});
