/**
 * What an operator does with grpcurl, against a real ledger: list, describe, and invoke every
 * RPC with JSON, resolving all types through server reflection only (test/tools/grpcurl.py is
 * grpcurl's algorithm; grpcurl itself cannot be installed here) — in insecure mode and over mTLS.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCertificateAuthority, issueCertificate } from '../../src/platform/certificates';
import { startTestLedger, type TestLedger } from '../support/ledger';

const python = '/usr/bin/python3';
const grpcurlScript = path.join(__dirname, '..', 'tools', 'grpcurl.py');

function grpcurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(python, [grpcurlScript, ...args], { timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: typeof error?.code === 'number' ? error.code : error ? 1 : 0, stdout, stderr }),
    );
  });
}

async function ok(args: string[]): Promise<string> {
  const result = await grpcurl(args);
  if (result.code !== 0)
    throw new Error(`grpcurl ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

const service = 'interclear.ledger.v1.LedgerService';

describe('insecure mode, with x-principal', () => {
  let ledger: TestLedger;
  let address: string;
  const as = (principal: string) => ['-plaintext', '-H', `x-principal: ${principal}`];
  beforeAll(async () => {
    ledger = await startTestLedger();
    address = ledger.ledger.address;
  });
  afterAll(() => ledger.stop());

  test('list and describe, including messages that use well-known types', async () => {
    const services = await ok([...as('admin'), address, 'list']);
    expect(services.split('\n')).toEqual(
      expect.arrayContaining([service, 'grpc.health.v1.Health', 'grpc.reflection.v1alpha.ServerReflection']),
    );
    const methods = await ok([...as('admin'), address, 'list', service]);
    for (const method of ['PrepareTransfer', 'FulfillTransfer', 'Subscribe', 'Deposit', 'ListTransfers']) {
      expect(methods).toContain(`${service}.${method}`);
    }
    const transfer = await ok([...as('admin'), address, 'describe', 'interclear.ledger.v1.Transfer']);
    expect(transfer).toContain('.google.protobuf.Timestamp expiry_time');
  });

  test('invokes every RPC with JSON', async () => {
    const call = (principal: string, method: string, body: unknown) =>
      ok([...as(principal), '-d', JSON.stringify(body), address, `${service}/${method}`]).then((out) =>
        JSON.parse(out),
      );
    expect((await call('admin', 'GetLedgerInfo', {})).ledger.ilpPrefix).toBe('test.ledger.');
    await call('admin', 'CreateAccount', { name: 'alice', owner: 'alice' });
    await call('admin', 'CreateAccount', { name: 'bob', owner: 'bob' });
    await call('admin', 'UpdateAccount', { name: 'bob', minimumBalance: '-100' });
    const deposit = await call('admin', 'Deposit', {
      depositId: randomUUID(),
      account: 'alice',
      amount: '5000',
      externalReference: 'wire',
    });
    expect(deposit.deposit.balanceAfter).toBe('5000');
    await call('admin', 'Withdraw', {
      withdrawalId: randomUUID(),
      account: 'alice',
      amount: '1000',
      externalReference: 'out',
    });
    expect((await call('alice', 'GetAccount', { name: 'alice' })).account.balance).toBe('4000');
    expect((await call('admin', 'ListAccounts', {})).accounts).toHaveLength(2);

    const fulfillment = randomBytes(32);
    const transferId = randomUUID();
    const prepared = await call('alice', 'PrepareTransfer', {
      transferId,
      debitAccount: 'alice',
      creditAccount: 'bob',
      amount: '250',
      executionCondition: createHash('sha256').update(fulfillment).digest('base64'),
      expiryTime: new Date(Date.now() + 30_000).toISOString(),
    });
    expect(prepared.transfer.state).toBe('TRANSFER_STATE_PREPARED');
    const executed = await call('bob', 'FulfillTransfer', { transferId, fulfillment: fulfillment.toString('base64') });
    expect(executed.transfer.state).toBe('TRANSFER_STATE_EXECUTED');
    expect((await call('bob', 'GetFulfillment', { transferId })).fulfillment).toBe(fulfillment.toString('base64'));
    expect((await call('alice', 'GetTransfer', { transferId })).transfer.amount).toBe('250');
    const second = randomUUID();
    await call('alice', 'PrepareTransfer', {
      transferId: second,
      debitAccount: 'alice',
      creditAccount: 'bob',
      amount: '1',
      executionCondition: randomBytes(32).toString('base64'),
      expiryTime: new Date(Date.now() + 30_000).toISOString(),
    });
    const rejected = await call('bob', 'RejectTransfer', {
      transferId: second,
      ilpError: { code: 'F99', name: 'Application Error' },
    });
    expect(rejected.transfer.rejectionReason).toBe('REJECTION_REASON_CANCELLED');
    const listed = await call('alice', 'ListTransfers', { account: 'alice' });
    expect(listed.transfers.map((transfer: { id: string }) => transfer.id)).toEqual([transferId, second]);
    // Batch calls: one result per item, a transfer or a google.rpc.Status with its ErrorInfo.
    const batchFulfillment = randomBytes(32);
    const batchId = randomUUID();
    const batch = await call('alice', 'PrepareTransfers', {
      transfers: [
        {
          transferId: batchId,
          debitAccount: 'alice',
          creditAccount: 'bob',
          amount: '5',
          executionCondition: createHash('sha256').update(batchFulfillment).digest('base64'),
          expiryTime: new Date(Date.now() + 30_000).toISOString(),
        },
        { transferId: randomUUID(), debitAccount: 'alice', creditAccount: 'bob', amount: '0' },
      ],
    });
    expect(batch.results[0].transfer.state).toBe('TRANSFER_STATE_PREPARED');
    expect(batch.results[1].error).toMatchObject({
      code: 3, // INVALID_ARGUMENT
      details: expect.arrayContaining([
        expect.objectContaining({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'INVALID_ARGUMENT' }),
      ]),
    });
    const batchFulfilled = await call('bob', 'FulfillTransfers', {
      fulfillments: [{ transferId: batchId, fulfillment: batchFulfillment.toString('base64') }],
    });
    expect(batchFulfilled.results[0].transfer.state).toBe('TRANSFER_STATE_EXECUTED');
    const batchRejected = await call('bob', 'RejectTransfers', {
      rejections: [{ transferId: batchId, ilpError: { code: 'F99' } }],
    });
    expect(batchRejected.results[0].error.message).toContain('already executed');
    await call('alice', 'SendMessage', {
      messageId: randomUUID(),
      fromAccount: 'alice',
      toAccount: 'bob',
      data: 'aGk=',
    });
    // Subscribe replays from sequence 0: a server stream printed message by message.
    const stream = await ok([
      ...as('bob'),
      '-max-time',
      '5',
      '-d',
      '{"afterSequence":"0"}',
      address,
      `${service}/Subscribe`,
    ]).catch((error: Error) => error.message);
    expect(stream).toContain('"headSequence"');
    expect(stream).toContain('EVENT_TYPE_TRANSFER_EXECUTED');
    expect(stream).toContain('EVENT_TYPE_MESSAGE_SENT');
  });

  test('an error prints its status, reason and field violations like grpcurl', async () => {
    const result = await grpcurl([...as('alice'), '-d', '{"transferId":"nope"}', address, `${service}/GetTransfer`]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('InvalidArgument');
    expect(result.stdout + result.stderr).toContain('transfer_id');
  });
});

describe('over mTLS', () => {
  let ledger: TestLedger;
  let files: Record<string, string>;
  beforeAll(async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'interclear-grpcurl-'));
    const authority = await createCertificateAuthority('grpcurl test CA');
    const server = await issueCertificate(authority, {
      commonName: 'ledger',
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost'],
    });
    const operator = await issueCertificate(authority, { commonName: 'operator' });
    files = {
      ca: path.join(directory, 'ca.crt'),
      serverCert: path.join(directory, 'ledger.crt'),
      serverKey: path.join(directory, 'ledger.key'),
      cert: path.join(directory, 'operator.crt'),
      key: path.join(directory, 'operator.key'),
    };
    writeFileSync(files.ca, authority.certificatePem);
    writeFileSync(files.serverCert, server.certificatePem);
    writeFileSync(files.serverKey, server.privateKeyPem);
    writeFileSync(files.cert, operator.certificatePem);
    writeFileSync(files.key, operator.privateKeyPem);
    ledger = await startTestLedger({
      insecure: false,
      tls: { certificate: files.serverCert, privateKey: files.serverKey, authority: files.ca },
      admins: ['operator'],
    });
  });
  afterAll(() => ledger.stop());

  test('reflection and calls work with -cacert/-cert/-key, and are refused without a certificate', async () => {
    const tls = ['-cacert', files.ca, '-cert', files.cert, '-key', files.key];
    const address = ledger.ledger.address;
    expect(await ok([...tls, address, 'list'])).toContain(service);
    const info = JSON.parse(await ok([...tls, address, `${service}/GetLedgerInfo`]));
    expect(info.ledger.currencyCode).toBe('USD');
    await ok([...tls, '-d', '{"name":"carol","owner":"carol"}', address, `${service}/CreateAccount`]);
    const refused = await grpcurl(['-cacert', files.ca, address, 'list']);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/Unauthenticated|UNAUTHENTICATED/);
  });
});
