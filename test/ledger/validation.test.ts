/**
 * Malformed input to every RPC gets INVALID_ARGUMENT with a field violation naming the bad field,
 * and changes nothing.
 */
import * as grpc from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { RejectTransferResponse, type TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import { decodeGrpcError } from '../../src/platform/errors';
import { newId, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
let admin: LedgerClient;
let alice: LedgerClient;

const empty = Buffer.alloc(0);
const condition = Buffer.alloc(32, 7);
const soon = () => new Date(Date.now() + 5_000);

async function snapshot() {
  const result = await ledger.ledger.pool.query(
    `select (select count(*) from transfers) as transfers, (select count(*) from events) as events,
            (select count(*) from movements) as movements, (select count(*) from messages) as messages,
            (select count(*) from accounts) as accounts,
            (select coalesce(sum(balance), 0) from accounts) as balances`,
  );
  return result.rows[0];
}

beforeAll(async () => {
  ledger = await startTestLedger({ maxHoldMs: 10_000 });
  admin = ledger.client('admin');
  alice = ledger.client('alice');
  await admin.createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: false, disabled: false });
  await admin.createAccount({ name: 'bob', owner: 'bob', minimumBalanceUnlimited: false, disabled: false });
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 1_000n, externalReference: 'seed' });
});
afterAll(() => ledger.stop());

const prepare = (overrides: Record<string, unknown>) => ({
  transferId: newId(),
  debitAccount: 'alice',
  creditAccount: 'bob',
  amount: 10n,
  executionCondition: condition,
  expiryTime: soon(),
  ilpPacket: empty,
  memo: empty,
  traceParent: '',
  ...overrides,
});

/** A page token as the service encodes one, around `position`. */
const pageToken = (position: string) => Buffer.from(position, 'utf8').toString('base64url');
const nul = 'a\u0000b';
const validIlpError = {
  code: 'F99',
  name: 'x',
  message: 'm',
  triggeredBy: 'test.ledger.bob',
  forwardedBy: [],
  data: empty,
};

const cases: Array<[string, string, (client: { admin: LedgerClient; alice: LedgerClient }) => Promise<unknown>]> = [
  [
    'CreateAccount: missing name',
    'name',
    ({ admin }) => admin.createAccount({ name: '', owner: 'x', minimumBalanceUnlimited: false, disabled: false }),
  ],
  [
    'CreateAccount: name with a space',
    'name',
    ({ admin }) => admin.createAccount({ name: 'a b', owner: 'x', minimumBalanceUnlimited: false, disabled: false }),
  ],
  [
    'CreateAccount: name too long',
    'name',
    ({ admin }) =>
      admin.createAccount({ name: 'a'.repeat(87), owner: 'x', minimumBalanceUnlimited: false, disabled: false }),
  ],
  [
    'CreateAccount: missing owner',
    'owner',
    ({ admin }) => admin.createAccount({ name: 'zed', owner: '', minimumBalanceUnlimited: false, disabled: false }),
  ],
  [
    'CreateAccount: minimum and unlimited together',
    'minimum_balance',
    ({ admin }) =>
      admin.createAccount({
        name: 'zed',
        owner: 'z',
        minimumBalance: -5n,
        minimumBalanceUnlimited: true,
        disabled: false,
      }),
  ],
  [
    'CreateAccount: NUL in owner',
    'owner',
    ({ admin }) => admin.createAccount({ name: 'zed', owner: nul, minimumBalanceUnlimited: false, disabled: false }),
  ],
  ['UpdateAccount: NUL in owner', 'owner', ({ admin }) => admin.updateAccount({ name: 'alice', owner: nul })],
  ['GetAccount: bad name', 'name', ({ admin }) => admin.getAccount({ name: 'no/slash' })],
  [
    'ListAccounts: page size too large',
    'page_size',
    ({ admin }) => admin.listAccounts({ pageSize: 5000, pageToken: '' }),
  ],
  [
    'ListAccounts: forged page token',
    'page_token',
    ({ admin }) => admin.listAccounts({ pageSize: 10, pageToken: '!!not-a-token' }),
  ],
  [
    'ListAccounts: page token of a name with NUL',
    'page_token',
    ({ admin }) => admin.listAccounts({ pageSize: 10, pageToken: pageToken('\u0000') }),
  ],
  ['UpdateAccount: bad name', 'name', ({ admin }) => admin.updateAccount({ name: '', disabled: true })],
  [
    'Deposit: bad UUID',
    'deposit_id',
    ({ admin }) => admin.deposit({ depositId: 'not-a-uuid', account: 'alice', amount: 1n, externalReference: 'r' }),
  ],
  [
    'Deposit: zero amount',
    'amount',
    ({ admin }) => admin.deposit({ depositId: newId(), account: 'alice', amount: 0n, externalReference: 'r' }),
  ],
  [
    'Deposit: amount beyond precision',
    'amount',
    ({ admin }) => admin.deposit({ depositId: newId(), account: 'alice', amount: 10n ** 18n, externalReference: 'r' }),
  ],
  [
    'Deposit: uint64 maximum',
    'amount',
    ({ admin }) =>
      admin.deposit({ depositId: newId(), account: 'alice', amount: 2n ** 64n - 1n, externalReference: 'r' }),
  ],
  [
    'Deposit: missing reference',
    'external_reference',
    ({ admin }) => admin.deposit({ depositId: newId(), account: 'alice', amount: 1n, externalReference: '' }),
  ],
  [
    'Deposit: NUL in reference',
    'external_reference',
    ({ admin }) => admin.deposit({ depositId: newId(), account: 'alice', amount: 1n, externalReference: nul }),
  ],
  [
    'Withdraw: NUL in reference',
    'external_reference',
    ({ admin }) => admin.withdraw({ withdrawalId: newId(), account: 'alice', amount: 1n, externalReference: nul }),
  ],
  [
    'Withdraw: oversize reference',
    'external_reference',
    ({ admin }) =>
      admin.withdraw({ withdrawalId: newId(), account: 'alice', amount: 1n, externalReference: 'r'.repeat(257) }),
  ],
  ['PrepareTransfer: bad UUID', 'transfer_id', ({ alice }) => alice.prepareTransfer(prepare({ transferId: '1234' }))],
  [
    'PrepareTransfer: missing debit account',
    'debit_account',
    ({ alice }) => alice.prepareTransfer(prepare({ debitAccount: '' })),
  ],
  [
    'PrepareTransfer: same debit and credit',
    'credit_account',
    ({ alice }) => alice.prepareTransfer(prepare({ creditAccount: 'alice' })),
  ],
  ['PrepareTransfer: zero amount', 'amount', ({ alice }) => alice.prepareTransfer(prepare({ amount: 0n }))],
  [
    'PrepareTransfer: overflowing amount',
    'amount',
    ({ alice }) => alice.prepareTransfer(prepare({ amount: 2n ** 63n })),
  ],
  [
    'PrepareTransfer: 31-byte condition',
    'execution_condition',
    ({ alice }) => alice.prepareTransfer(prepare({ executionCondition: Buffer.alloc(31) })),
  ],
  [
    'PrepareTransfer: 33-byte condition',
    'execution_condition',
    ({ alice }) => alice.prepareTransfer(prepare({ executionCondition: Buffer.alloc(33) })),
  ],
  [
    'PrepareTransfer: condition without expiry',
    'expiry_time',
    ({ alice }) => alice.prepareTransfer(prepare({ expiryTime: undefined })),
  ],
  [
    'PrepareTransfer: expiry in the past',
    'expiry_time',
    ({ alice }) => alice.prepareTransfer(prepare({ expiryTime: new Date(Date.now() - 1_000) })),
  ],
  [
    'PrepareTransfer: expiry beyond the maximum hold',
    'expiry_time',
    ({ alice }) => alice.prepareTransfer(prepare({ expiryTime: new Date(Date.now() + 60_000) })),
  ],
  [
    'PrepareTransfer: expiry without condition',
    'expiry_time',
    ({ alice }) => alice.prepareTransfer(prepare({ executionCondition: empty })),
  ],
  [
    'PrepareTransfer: oversize memo',
    'memo',
    ({ alice }) => alice.prepareTransfer(prepare({ memo: Buffer.alloc(8193) })),
  ],
  [
    'PrepareTransfer: oversize packet',
    'ilp_packet',
    ({ alice }) => alice.prepareTransfer(prepare({ ilpPacket: Buffer.alloc(32768) })),
  ],
  [
    'FulfillTransfer: bad UUID',
    'transfer_id',
    ({ alice }) => alice.fulfillTransfer({ transferId: 'x', fulfillment: Buffer.alloc(32) }),
  ],
  [
    'FulfillTransfer: empty fulfillment',
    'fulfillment',
    ({ alice }) => alice.fulfillTransfer({ transferId: newId(), fulfillment: empty }),
  ],
  [
    'FulfillTransfer: 64-byte fulfillment',
    'fulfillment',
    ({ alice }) => alice.fulfillTransfer({ transferId: newId(), fulfillment: Buffer.alloc(64) }),
  ],
  ['RejectTransfer: missing ILP error', 'ilp_error', ({ alice }) => alice.rejectTransfer({ transferId: newId() })],
  [
    'RejectTransfer: bad ILP error code',
    'ilp_error.code',
    ({ alice }) =>
      alice.rejectTransfer({
        transferId: newId(),
        ilpError: { code: 'X1', name: '', message: '', triggeredBy: '', forwardedBy: [], data: empty },
      }),
  ],
  ...(['name', 'message', 'triggeredBy'] as const).map((field): (typeof cases)[number] => [
    `RejectTransfer: NUL in ILP error ${field}`,
    `ilp_error.${field === 'triggeredBy' ? 'triggered_by' : field}`,
    ({ alice }) => alice.rejectTransfer({ transferId: newId(), ilpError: { ...validIlpError, [field]: nul } }),
  ]),
  [
    'RejectTransfer: NUL in ILP error forwarded_by',
    'ilp_error.forwarded_by[1]',
    ({ alice }) =>
      alice.rejectTransfer({ transferId: newId(), ilpError: { ...validIlpError, forwardedBy: ['test.a', nul] } }),
  ],
  [
    'RejectTransfer: trigger time after year 9999',
    'ilp_error.trigger_time',
    ({ alice }) =>
      alice.rejectTransfer({
        transferId: newId(),
        ilpError: { ...validIlpError, triggerTime: new Date('+020000-01-01T00:00:00Z') },
      }),
  ],
  ['GetTransfer: bad UUID', 'transfer_id', ({ alice }) => alice.getTransfer({ transferId: 'nope' })],
  ['GetFulfillment: bad UUID', 'transfer_id', ({ alice }) => alice.getFulfillment({ transferId: 'nope' })],
  [
    'ListTransfers: unknown state',
    'state',
    ({ admin }) => admin.listTransfers({ account: '', state: 42 as TransferState, pageSize: 10, pageToken: '' }),
  ],
  [
    'ListTransfers: non-admin without account',
    'account',
    ({ alice }) => alice.listTransfers({ account: '', state: 0, pageSize: 10, pageToken: '' }),
  ],
  [
    'ListTransfers: forged page token',
    'page_token',
    ({ admin }) =>
      admin.listTransfers({ account: '', state: 0, pageSize: 10, pageToken: Buffer.from('x|y').toString('base64url') }),
  ],
  ...['1', '+275760-09-13T00:00:00.000Z', '2026-01-01', '2026-01-01T00:00:00.000Z|x'].map(
    (time): (typeof cases)[number] => [
      `ListTransfers: page token with the time "${time}"`,
      'page_token',
      ({ admin }) =>
        admin.listTransfers({ account: '', state: 0, pageSize: 10, pageToken: pageToken(`${time}|${newId()}`) }),
    ],
  ),
  [
    'SendMessage: empty data',
    'data',
    ({ alice }) => alice.sendMessage({ messageId: newId(), fromAccount: 'alice', toAccount: 'bob', data: empty }),
  ],
  [
    'SendMessage: oversize data',
    'data',
    ({ alice }) =>
      alice.sendMessage({ messageId: newId(), fromAccount: 'alice', toAccount: 'bob', data: Buffer.alloc(8193) }),
  ],
  [
    'SendMessage: bad UUID',
    'message_id',
    ({ alice }) =>
      alice.sendMessage({ messageId: 'm', fromAccount: 'alice', toAccount: 'bob', data: Buffer.from('x') }),
  ],
];

test.each(cases)('%s → INVALID_ARGUMENT on %s, nothing changes', async (_label, field, call) => {
  const before = await snapshot();
  let failure: grpc.ServiceError | undefined;
  try {
    await call({ admin, alice });
  } catch (error) {
    failure = error as grpc.ServiceError;
  }
  expect(failure).toBeDefined();
  const decoded = decodeGrpcError(failure!);
  expect(decoded.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(decoded.reason).toBe('INVALID_ARGUMENT');
  expect(decoded.fieldViolations.map((violation) => violation.field)).toContain(field);
  expect(await snapshot()).toEqual(before);
});

test('RejectTransfers: an item with NUL in its ILP error is INVALID_ARGUMENT on its own path', async () => {
  const { results } = await alice.rejectTransfers({
    rejections: [{ transferId: newId(), ilpError: { ...validIlpError, message: nul } }],
  });
  const status = results[0].result?.$case === 'error' ? results[0].result.value : undefined;
  expect(status?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(status?.message).toContain('rejections[0].ilp_error.message');
});

test('RejectTransfer: a trigger time no Date can hold (seconds = 10^15) is INVALID_ARGUMENT', async () => {
  // Encoded by hand: the generated client cannot write such a Timestamp from a Date.
  const timestamp = new BinaryWriter()
    .uint32(8)
    .int64(10n ** 15n)
    .finish();
  const ilpError = new BinaryWriter().uint32(10).string('F99').uint32(50).bytes(timestamp).finish();
  const request = new BinaryWriter().uint32(10).string(newId()).uint32(18).bytes(ilpError).finish();
  const metadata = new grpc.Metadata();
  metadata.set('x-principal', 'bob');
  const failure = await new Promise<grpc.ServiceError | undefined>((resolve) => {
    alice.raw.makeUnaryRequest(
      '/interclear.ledger.v1.LedgerService/RejectTransfer',
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => RejectTransferResponse.decode(bytes),
      Buffer.from(request),
      metadata,
      (error) => resolve(error ?? undefined),
    );
  });
  expect(failure).toBeDefined();
  const decoded = decodeGrpcError(failure!);
  expect(decoded.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(decoded.fieldViolations.map((violation) => violation.field)).toContain('ilp_error.trigger_time');
});

test('Subscribe with an unknown event type or a sequence beyond the head is INVALID_ARGUMENT', async () => {
  for (const request of [
    { accounts: ['alice'], eventTypes: [99] },
    { accounts: ['alice'], afterSequence: 10n ** 12n },
  ]) {
    const stream = alice.subscribe(request);
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => undefined);
    });
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(decodeGrpcError(error).fieldViolations.length).toBeGreaterThan(0);
  }
});

test('a request without a principal is UNAUTHENTICATED', async () => {
  const anonymous = ledger.client('');
  await expect(anonymous.getLedgerInfo({})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
});
