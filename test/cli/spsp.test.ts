/**
 * `interclear spsp query|setup|payment` and `interclear pay --spsp`, run as a user runs them,
 * against stand-in SPSP services: the TLS flags reach the client, amounts are checked before
 * anything is sent, and a refused Pay ends the command with its reason (no retry outlives it).
 */
import * as grpc from '@grpc/grpc-js';
import {
  Payment,
  PaymentServiceService,
  PaymentState,
  SpspServiceService,
  type PaymentServiceServer,
  type Receiver,
  type SpspServiceServer,
} from '../../src/gen/interclear/spsp/v1/spsp';
import type { TlsFiles } from '../../src/platform/tls';
import {
  callerCommonName,
  createTestCertificates,
  runInterclear,
  serviceError,
  startStandInServer,
  type StandInServer,
} from './support';

const bob: Receiver = {
  identifier: 'bob@dfsp-b',
  ilpAddress: 'private.dfsp-b.bob',
  name: 'Bob',
  currencyCode: 'XOF',
  scale: 0,
  minimumAmount: 1n,
};

const unimplemented = () => {
  throw new Error('not used by these tests');
};

describe('spsp query, setup and payment over mTLS', () => {
  let admin: TlsFiles;
  let server: StandInServer;
  const callers: string[] = [];

  beforeAll(async () => {
    const certificates = await createTestCertificates();
    admin = certificates.admin;
    const spsp: SpspServiceServer = {
      query: (call, callback) => {
        callers.push(`Query ${callerCommonName(call)}`);
        callback(null, { receiver: bob });
      },
      setupPayment: (call, callback) => {
        callers.push(`SetupPayment ${callerCommonName(call)}`);
        callback(null, {
          paymentRequest: {
            receiver: bob,
            destinationAddress: 'private.dfsp-b.bob.token',
            destinationAmount: call.request.destinationAmount,
            ilpPacket: Buffer.alloc(0),
            executionCondition: Buffer.alloc(32),
            expiryTime: new Date('2030-01-01T00:00:00Z'),
            data: Buffer.alloc(0),
          },
        });
      },
    };
    const payments: PaymentServiceServer = {
      quote: unimplemented,
      getIncomingPayment: unimplemented,
      listIncomingPayments: unimplemented,
      pay: unimplemented,
      watchPayment: unimplemented,
      getPayment: (call, callback) => {
        callers.push(`GetPayment ${callerCommonName(call)}`);
        callback(null, {
          payment: Payment.fromPartial({ id: call.request.paymentId, state: PaymentState.PAYMENT_STATE_EXECUTED }),
        });
      },
    };
    server = await startStandInServer(
      [
        { definition: SpspServiceService, implementation: spsp },
        { definition: PaymentServiceService, implementation: payments },
      ],
      certificates.server,
    );
  });

  afterAll(() => server.stop());

  const tlsFlags = () => ['--tls-cert', admin.certificate, '--tls-key', admin.privateKey, '--tls-ca', admin.authority];
  const paymentId = '6f1c2a52-3c1f-4c7e-9d55-0b6e3f0c2a11';

  test.each([
    ['query', ['spsp', 'query', 'bob@dfsp-b'], 'Query', '"identifier": "bob@dfsp-b"'],
    ['setup', ['spsp', 'setup', 'bob@dfsp-b', '500'], 'SetupPayment', '"destinationAmount": "500"'],
    // Enums by name, as the proto3 JSON form writes them, not by number.
    ['payment', ['spsp', 'payment', paymentId], 'GetPayment', `"state": "PAYMENT_STATE_EXECUTED"`],
  ])('`spsp %s` calls the service with the certificate it is given', async (_case, args, method, output) => {
    callers.length = 0;
    const { code, stdout, stderr } = await runInterclear([...args, '--spsp', server.address, ...tlsFlags()]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain(output);
    expect(callers).toEqual([`${method} admin`]);
  });

  test('a service that cannot be reached: which one, where, why and what to check', async () => {
    const closed = await startStandInServer([]);
    const address = closed.address;
    await closed.stop();
    const { code, stderr } = await runInterclear(['spsp', 'query', 'bob@dfsp-b', '--spsp', address, ...tlsFlags()]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `interclear: cannot reach the SPSP service at ${address}: connect ECONNREFUSED ${address}; is it running, and is ` +
        "this its address (--spsp)? A local network's addresses are in .interclear/network/network.json (npm start prints them)\n",
    );
  });

  test('plaintext against an mTLS server: the message says the server may expect TLS', async () => {
    const { code, stderr } = await runInterclear(['spsp', 'query', 'bob@dfsp-b', '--spsp', server.address]);
    expect(code).toBe(1);
    expect(stderr).toContain(`interclear: cannot reach the SPSP service at ${server.address}`);
    expect(stderr).toContain('the server may expect mTLS (give --tls-cert, --tls-key and --tls-ca)');
    expect(stderr).not.toContain('Resolution note');
  });

  test('the TLS flags may also come before the subcommand', async () => {
    callers.length = 0;
    const { code } = await runInterclear(['spsp', ...tlsFlags(), 'query', 'bob@dfsp-b', '--spsp', server.address]);
    expect(code).toBe(0);
    expect(callers).toEqual(['Query admin']);
  });

  test('an incomplete set of TLS files is a configuration error, not a plaintext call', async () => {
    callers.length = 0;
    const { code, stderr } = await runInterclear([
      'spsp',
      'query',
      'bob@dfsp-b',
      '--spsp',
      server.address,
      '--tls-cert',
      admin.certificate,
    ]);
    expect(code).toBe(2);
    expect(stderr).toContain('--tls-cert/--tls-key/--tls-ca: give all three files, or none');
    expect(callers).toEqual([]);
  });

  test('`spsp setup` refuses an amount beyond the ledger’s largest before calling', async () => {
    callers.length = 0;
    const { code, stderr } = await runInterclear([
      'spsp',
      'setup',
      'bob@dfsp-b',
      '18446744073709551616',
      '--spsp',
      server.address,
      ...tlsFlags(),
    ]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      'interclear: invalid configuration: destination-amount: must be a whole number of minor units of at most 9223372036854775807, got "18446744073709551616"\n',
    );
    expect(callers).toEqual([]);
  });
});

describe('pay --spsp', () => {
  let server: StandInServer;
  let pays = 0;
  const domain = 'interclear.spsp.v1.PaymentService';
  const refusal = 'receiver: must be an identifier like "bob@dfsp-b" or an ILP address like "private.dfsp-b.bob"';
  let refusePay: () => void = () => undefined;

  beforeAll(async () => {
    const payments: PaymentServiceServer = {
      quote: unimplemented,
      getIncomingPayment: unimplemented,
      listIncomingPayments: unimplemented,
      getPayment: unimplemented,
      // Refused before it is recorded: the watch finds nothing, and Pay answers right after it,
      // while the command's watch is about to try again.
      pay: (_call, callback) => {
        pays += 1;
        refusePay = () =>
          callback(
            serviceError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', refusal, domain, [
              { field: 'receiver', description: refusal.slice('receiver: '.length) },
            ]),
          );
      },
      watchPayment: (call) => {
        call.emit(
          'error',
          serviceError(
            grpc.status.NOT_FOUND,
            'PAYMENT_NOT_FOUND',
            `payment ${call.request.paymentId} does not exist`,
            domain,
          ),
        );
        setTimeout(() => refusePay(), 5);
      },
    };
    server = await startStandInServer([{ definition: PaymentServiceService, implementation: payments }]);
  });

  afterAll(() => server.stop());

  test("`pay --from` (the manifest's network) refuses the flags that only apply with --spsp, rather than ignoring them", async () => {
    const tls = ['--tls-cert', 'admin.crt', '--tls-key', 'admin.key', '--tls-ca', 'ca.crt'];
    for (const flags of [tls, ['--sender-account', 'alice']]) {
      const { code, stderr } = await runInterclear([
        'pay',
        '--from',
        'alice@dfsp-a',
        '--to',
        'bob@dfsp-b',
        '--destination-amount',
        '10',
        '--manifest',
        '/nonexistent/network.json',
        ...flags,
      ]);
      expect(code).toBe(2);
      expect(stderr).toMatch(
        /^interclear: invalid configuration: --(tls-cert|sender-account): applies with --spsp only/,
      );
    }
    // From the environment (set for the other commands), they are no refusal: the manifest is read.
    const { code, stderr } = await runInterclear(
      [
        'pay',
        '--from',
        'alice@dfsp-a',
        '--to',
        'bob@dfsp-b',
        '--destination-amount',
        '10',
        '--manifest',
        '/nonexistent/network.json',
      ],
      { INTERCLEAR_TLS_CERT: 'admin.crt', INTERCLEAR_TLS_KEY: 'admin.key', INTERCLEAR_TLS_CA: 'ca.crt' },
    );
    expect(code).not.toBe(0);
    expect(stderr).not.toContain('applies with --spsp only');
    expect(stderr).toContain('/nonexistent/network.json');
  });

  test('a refused Pay ends the command with the refusal, and nothing else', async () => {
    const { code, stdout, stderr } = await runInterclear([
      'pay',
      '--spsp',
      server.address,
      '--sender-account',
      'alice',
      '--to',
      'bob@@dfsp-b',
      '--destination-amount',
      '5',
    ]);
    // Once: the message is the field's violation, not repeated under it.
    expect(stderr).toBe(`interclear: INVALID_ARGUMENT: ${refusal}\n`);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^payment [0-9a-f-]{36}: alice → bob@@dfsp-b\n$/);
    expect(pays).toBe(1);
  });

  test.each([
    ['2^64', '18446744073709551616', 'must be a whole number of minor units of at most 9223372036854775807'],
    ['text', 'ten', 'must be a whole number of minor units'],
    ['zero', '0', 'must be at least 1 minor unit'],
  ])('an amount of %s is refused before anything is sent', async (_case, amount, message) => {
    pays = 0;
    const { code, stderr } = await runInterclear([
      'pay',
      '--spsp',
      server.address,
      '--sender-account',
      'alice',
      '--to',
      'bob@dfsp-b',
      '--source-amount',
      amount,
    ]);
    expect(code).toBe(2);
    expect(stderr).toBe(`interclear: invalid configuration: --source-amount: ${message}, got "${amount}"\n`);
    expect(pays).toBe(0);
  });

  test('a payment id that is not a UUID is refused before anything is sent', async () => {
    pays = 0;
    const { code, stderr } = await runInterclear([
      'pay',
      '--spsp',
      server.address,
      '--sender-account',
      'alice',
      '--to',
      'bob@dfsp-b',
      '--source-amount',
      '10',
      '--id',
      'abc',
    ]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      'interclear: invalid configuration: --id: must be a UUID like 3fa85f64-5717-4562-b3fc-2c963f66afa6, got "abc"\n',
    );
    expect(pays).toBe(0);
  });
});

describe('pay --spsp with a payment id given again', () => {
  let server: StandInServer;
  const made = new Date(Date.now() - 3_600_000);
  const earlierId = '0b0e4c1e-6f3a-4d43-9d0c-7b1d1f0e2a11';

  beforeAll(async () => {
    const answer = (paymentId: string) =>
      Payment.fromPartial({
        id: paymentId,
        state: PaymentState.PAYMENT_STATE_EXECUTED,
        receiver: 'bob@dfsp-b',
        senderAccount: 'alice',
        // The stand-in's record of the earlier id is an hour old; any other id is made now (and
        // the clocks need not agree: the command asks whether the id exists before paying).
        createTime: paymentId === earlierId ? made : new Date(Date.now() - 7_200_000),
      });
    const payments: PaymentServiceServer = {
      quote: unimplemented,
      getIncomingPayment: unimplemented,
      listIncomingPayments: unimplemented,
      getPayment: (call, callback) =>
        call.request.paymentId === earlierId
          ? callback(null, { payment: answer(earlierId) })
          : callback(
              serviceError(
                grpc.status.NOT_FOUND,
                'PAYMENT_NOT_FOUND',
                'no such payment',
                'interclear.spsp.v1.PaymentService',
              ),
            ),
      pay: (call, callback) => callback(null, { payment: answer(call.request.paymentId) }),
      watchPayment: (call) => call.end(),
    };
    server = await startStandInServer([{ definition: PaymentServiceService, implementation: payments }]);
  });

  afterAll(() => server.stop());

  const pay = (id: string) =>
    runInterclear([
      'pay',
      '--spsp',
      server.address,
      '--sender-account',
      'alice',
      '--to',
      'bob@dfsp-b',
      '--destination-amount',
      '10',
      '--id',
      id,
    ]);

  test('the output says the payment was made earlier and nothing was sent again', async () => {
    const { code, stdout } = await pay(earlierId);
    expect(code).toBe(0);
    expect(stdout).toContain(
      `(payment ${earlierId} was made earlier, at ${made.toISOString()}: this is its record; nothing was sent again)`,
    );
    expect(stdout).toContain('executed: bob@dfsp-b');
  });

  test('a payment made by this command says nothing of the kind', async () => {
    const { code, stdout } = await pay('0b0e4c1e-6f3a-4d43-9d0c-7b1d1f0e2a12');
    expect(code).toBe(0);
    expect(stdout).not.toContain('was made earlier');
  });
});
