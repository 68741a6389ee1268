/**
 * The receiver's decision about a prepared transfer, by table: which transfers it fulfils and
 * which it rejects with which ILP error code (SPEC.md §5).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createPaymentRequest, serializeIlpPayment } from '../../src/ilp';
import { silentLogger } from '../../src/platform/logger';
import { decideIncomingTransfer, IncomingPaymentHandler } from '../../src/spsp/incoming';
import type { IlpError, IncomingPayment } from '../../src/spsp/model';
import { RemoteError, type LedgerTransferView } from '../../src/spsp/ports';
import { ReceiverBook } from '../../src/spsp/receivers';

const secret = randomBytes(32);
const prefix = 'private.dfsp-b.';
const now = new Date('2026-12-10T12:00:00Z');
const receivers = new ReceiverBook('dfsp-b', prefix, [
  { name: 'bob', account: 'bob', displayName: 'Bob', minimumAmount: 1n, maximumAmount: null, disabled: false },
  { name: 'carol', account: 'carol', displayName: 'Carol', minimumAmount: 1n, maximumAmount: null, disabled: true },
]);

function requestFor(account: string, amount: bigint, options: { secret?: Buffer; expiresAt?: Date } = {}) {
  return createPaymentRequest({
    secret: options.secret ?? secret,
    destinationAccount: `${prefix}${account}`,
    destinationAmount: amount,
    expiresAt: options.expiresAt ?? new Date(now.getTime() + 30_000),
  });
}

type Case = {
  name: string;
  transfer: () => {
    state?: 'prepared' | 'executed' | 'rejected';
    creditAccount: string;
    amount: bigint;
    executionCondition: Buffer;
    ilpPacket: Buffer;
  };
  expected: string;
};

const bobRequest = requestFor('bob', 1000n);

const cases: Case[] = [
  {
    name: 'the exact amount with the right packet and condition: fulfil',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 1000n,
      executionCondition: bobRequest.condition,
      ilpPacket: bobRequest.packet,
    }),
    expected: 'fulfil',
  },
  {
    name: 'more than the packet amount: fulfil (the receiver never gets less than asked)',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 1001n,
      executionCondition: bobRequest.condition,
      ilpPacket: bobRequest.packet,
    }),
    expected: 'fulfil',
  },
  {
    name: 'less than the packet amount: F04 Insufficient Destination Amount',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 999n,
      executionCondition: bobRequest.condition,
      ilpPacket: bobRequest.packet,
    }),
    expected: 'F04',
  },
  {
    name: 'a condition that is not the packet’s: F05 Wrong Condition',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 1000n,
      executionCondition: randomBytes(32),
      ilpPacket: bobRequest.packet,
    }),
    expected: 'F05',
  },
  {
    name: 'a packet altered on the way (data added): F05, its condition no longer regenerates',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 1000n,
      executionCondition: bobRequest.condition,
      ilpPacket: serializeIlpPayment({ amount: 1000n, account: bobRequest.destinationAddress, data: Buffer.from('x') }),
    }),
    expected: 'F05',
  },
  {
    name: 'bytes that are not an ILP packet: F01 Invalid Packet',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 1000n,
      executionCondition: bobRequest.condition,
      ilpPacket: Buffer.from('nonsense'),
    }),
    expected: 'F01',
  },
  {
    name: 'a packet for another receiver, credited to bob: F02 Unreachable',
    transfer: () => {
      const other = requestFor('dave', 1000n);
      return { creditAccount: 'bob', amount: 1000n, executionCondition: other.condition, ilpPacket: other.packet };
    },
    expected: 'F02',
  },
  {
    name: 'a token made with another secret: F06 Unexpected Payment',
    transfer: () => {
      const forged = requestFor('bob', 1000n, { secret: randomBytes(32) });
      return { creditAccount: 'bob', amount: 1000n, executionCondition: forged.condition, ilpPacket: forged.packet };
    },
    expected: 'F06',
  },
  {
    name: 'a payment request past its expiry: R00 Transfer Timed Out',
    transfer: () => {
      const late = requestFor('bob', 1000n, { expiresAt: new Date(now.getTime() - 1) });
      return { creditAccount: 'bob', amount: 1000n, executionCondition: late.condition, ilpPacket: late.packet };
    },
    expected: 'R00',
  },
  {
    name: 'an account of the service that is no receiver: F02 Unreachable',
    transfer: () => ({
      creditAccount: 'dave',
      amount: 1000n,
      executionCondition: bobRequest.condition,
      ilpPacket: bobRequest.packet,
    }),
    expected: 'F02',
  },
  {
    name: 'a disabled receiver: F07 Cannot Receive',
    transfer: () => {
      const request = requestFor('carol', 1000n);
      return {
        creditAccount: 'carol',
        amount: 1000n,
        executionCondition: request.condition,
        ilpPacket: request.packet,
      };
    },
    expected: 'F07',
  },
  {
    name: 'a transfer without condition (it executed at once): nothing to do',
    transfer: () => ({
      creditAccount: 'bob',
      amount: 1000n,
      executionCondition: Buffer.alloc(0),
      ilpPacket: bobRequest.packet,
    }),
    expected: 'ignore',
  },
  {
    name: 'a transfer already final (a replayed notification): nothing to do',
    transfer: () => ({
      state: 'executed',
      creditAccount: 'bob',
      amount: 1000n,
      executionCondition: bobRequest.condition,
      ilpPacket: bobRequest.packet,
    }),
    expected: 'ignore',
  },
];

test.each(cases)('$name', ({ transfer, expected }) => {
  const decision = decideIncomingTransfer({ transfer: { state: 'prepared', ...transfer() }, receivers, secret, now });
  if (decision.action === 'reject') {
    expect(decision.code).toBe(expected);
  } else {
    expect(decision.action).toBe(expected);
  }
  if (decision.action === 'fulfil') {
    expect(createHash('sha256').update(decision.fulfillment).digest()).toEqual(bobRequest.condition);
  }
});

describe('rejecting a transfer the ledger has rejected already', () => {
  const preparedTransfer = (): LedgerTransferView => ({
    id: randomUUID(),
    debitAccount: 'connector-b',
    creditAccount: 'bob',
    amount: 999n, // less than asked: rejected
    executionCondition: bobRequest.condition,
    expiresAt: new Date(now.getTime() + 10_000),
    state: 'prepared',
    rejectionReason: null,
    ilpError: null,
    ilpPacket: bobRequest.packet,
    preparedAt: now,
    traceParent: null,
  });
  const handlerRefusedWith = (error: Error, onLedger?: Partial<LedgerTransferView>) => {
    const recorded: IncomingPayment[] = [];
    const handler = new IncomingPaymentHandler({
      ledger: {
        fulfillTransfer: () => Promise.reject(new Error('not expected')),
        rejectTransfer: () => Promise.reject(error),
        getTransfer: () => Promise.resolve(onLedger ? { ...preparedTransfer(), ...onLedger } : undefined),
      },
      store: {
        findIncoming: () => Promise.resolve(undefined),
        recordIncoming: (record) => {
          recorded.push(record);
          return Promise.resolve();
        },
      },
      receivers,
      secret,
      now: () => now,
      logger: silentLogger,
    });
    return { handler, recorded };
  };

  test('with another ILP error (an earlier decision, before a restart): settled, recorded as the ledger has it', async () => {
    const earlier: IlpError = {
      code: 'R00',
      name: 'Transfer Timed Out',
      message: 'the payment request expired',
      triggeredBy: 'private.dfsp-b.bob',
      forwardedBy: [],
      triggeredAt: now,
      data: Buffer.alloc(0),
    };
    const { handler, recorded } = handlerRefusedWith(
      new RemoteError('refused', 'ALREADY_EXISTS', 'transfer was rejected with a different ILP error'),
      { state: 'rejected', rejectionReason: 'cancelled', ilpError: earlier },
    );
    await handler.handlePrepared(preparedTransfer());
    expect(
      recorded.map(({ state, ilpErrorCode, ilpErrorMessage }) => ({ state, ilpErrorCode, ilpErrorMessage })),
    ).toEqual([{ state: 'rejected', ilpErrorCode: 'R00', ilpErrorMessage: 'the payment request expired' }]);
  });

  test('already expired on the ledger: recorded as expired', async () => {
    const { handler, recorded } = handlerRefusedWith(
      new RemoteError('refused', 'TRANSFER_EXPIRED', 'transfer has expired'),
      { state: 'rejected', rejectionReason: 'expired' },
    );
    await handler.handlePrepared(preparedTransfer());
    expect(recorded.map((record) => record.state)).toEqual(['expired']);
  });

  test('a refusal that settles nothing is thrown, so that the follower retries', async () => {
    const { handler, recorded } = handlerRefusedWith(new RemoteError('unavailable', '', 'no answer'));
    await expect(handler.handlePrepared(preparedTransfer())).rejects.toThrow('no answer');
    expect(recorded).toEqual([]);
  });
});
