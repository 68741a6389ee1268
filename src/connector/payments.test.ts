import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { serializeIlpPayment } from '../ilp';
import { parseConnectorConfig } from './config';
import { exampleConnectorConfigs } from './example';
import { outgoingTransferId } from './ids';
import type { IlpError, LedgerEndpoint, Payment, PaymentState, TransferNotification } from './model';
import { applyNotification, createTransitionContext, settleLeaseMarginMs } from './payments';

const settings = parseConnectorConfig(
  exampleConnectorConfigs({
    dfspALedger: '127.0.0.1:7101',
    centralLedger: '127.0.0.1:7100',
    dfspBLedger: '127.0.0.1:7201',
    connectorA: '127.0.0.1:7103',
    connectorB: '127.0.0.1:7203',
  }).b,
);
// Connector B: incoming on the central ledger, outgoing on DFSP B's ledger.
const context = createTransitionContext(settings, { jobLeaseMs: 1000 });
const central = settings.ledgers[0] as LedgerEndpoint;
const dfspB = settings.ledgers[1] as LedgerEndpoint;

const now = new Date('2030-01-01T00:00:00.000Z');
const preimage = randomBytes(32);
const condition = createHash('sha256').update(preimage).digest();
const ilpPacket = serializeIlpPayment({ account: 'private.dfsp-b.bob', amount: 8964n, data: Buffer.alloc(0) });
const incomingId = '0b6b1c1e-7d1a-4c5e-9f44-1d3c6a2b9e01';
const outgoingId = outgoingTransferId(settings.name, central.prefix, incomingId);
const traceParent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const bobsError: IlpError = {
  code: 'F99',
  name: 'Application Error',
  message: 'bob does not want it',
  triggeredBy: 'private.dfsp-b.bob',
  forwardedBy: [],
  triggeredAt: now,
  data: Buffer.alloc(0),
};

type Event =
  | 'incoming prepared'
  | 'incoming executed'
  | 'incoming rejected'
  | 'outgoing prepared'
  | 'outgoing executed'
  | 'outgoing cancelled'
  | 'outgoing expired';

function notification(event: Event): { notification: TransferNotification; ledger: LedgerEndpoint } {
  const [side, what] = event.split(' ') as ['incoming' | 'outgoing', string];
  const incoming = side === 'incoming';
  const ledger = incoming ? central : dfspB;
  const type = what === 'cancelled' || what === 'expired' ? 'rejected' : (what as TransferNotification['type']);
  return {
    ledger,
    notification: {
      ledgerPrefix: ledger.prefix,
      sequence: 1n,
      type,
      transfer: {
        id: incoming ? incomingId : outgoingId,
        debitAccount: incoming ? 'connector-a' : 'connector-b',
        creditAccount: incoming ? 'connector-b' : 'bob',
        amount: incoming ? 898200n : 8964n,
        executionCondition: condition,
        expiresAt: new Date(now.getTime() + (incoming ? 5000 : 4000)),
        ilpPacket,
        rejectionReason: what === 'cancelled' ? 'cancelled' : type === 'rejected' ? 'expired' : null,
        ilpError: what === 'cancelled' ? bobsError : null,
        traceParent: incoming ? traceParent : null,
      },
      fulfillment: type === 'executed' ? preimage : null,
    },
  };
}

function paymentIn(state: PaymentState): Payment {
  return {
    id: outgoingId,
    incomingLedgerPrefix: central.prefix,
    incomingTransferId: incomingId,
    incomingAmount: 898200n,
    incomingExpiresAt: new Date(now.getTime() + 5000),
    executionCondition: condition,
    ilpPacket,
    traceParent,
    outgoing: {
      ledgerPrefix: dfspB.prefix,
      creditAccount: 'bob',
      amount: 8964n,
      expiresAt: new Date(now.getTime() + 4000),
    },
    state,
    fulfillment: ['fulfilling', 'fulfilled', 'lost'].includes(state) ? preimage : null,
    ilpError: state === 'rejecting' || state === 'rejected' ? bobsError : null,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    updatedAt: now,
  };
}

function apply(payment: Payment | undefined, event: Event) {
  const { notification: delivered, ledger } = notification(event);
  return applyNotification(payment, delivered, ledger, context, now);
}

describe('the payment state machine', () => {
  test.each<[PaymentState | 'none', Event, PaymentState | 'none', boolean]>([
    // before, notification, after, written
    ['none', 'incoming prepared', 'forwarding', true],
    ['forwarding', 'incoming prepared', 'forwarding', false], // duplicate
    ['fulfilled', 'incoming prepared', 'fulfilled', false], // replay after the payment ended
    ['rejected', 'incoming prepared', 'rejected', false],
    ['forwarding', 'outgoing prepared', 'prepared', true],
    ['prepared', 'outgoing prepared', 'prepared', false],
    ['fulfilling', 'outgoing prepared', 'fulfilling', false], // replay, out of order
    ['forwarding', 'outgoing executed', 'fulfilling', true], // before the prepare was answered
    ['prepared', 'outgoing executed', 'fulfilling', true],
    ['fulfilling', 'outgoing executed', 'fulfilling', false],
    ['fulfilled', 'outgoing executed', 'fulfilled', false],
    ['lost', 'outgoing executed', 'lost', false],
    ['rejecting', 'outgoing executed', 'fulfilling', true], // the outgoing transfer won: pass back
    ['rejected', 'outgoing executed', 'fulfilling', true], // try anyway; lost if the incoming is final
    ['forwarding', 'outgoing cancelled', 'rejecting', true],
    ['prepared', 'outgoing cancelled', 'rejecting', true],
    ['prepared', 'outgoing expired', 'rejecting', true],
    ['rejecting', 'outgoing cancelled', 'rejecting', false],
    ['rejected', 'outgoing expired', 'rejected', false],
    ['fulfilling', 'outgoing cancelled', 'fulfilling', false],
    ['fulfilled', 'outgoing expired', 'fulfilled', false],
    ['fulfilling', 'incoming executed', 'fulfilled', true],
    ['fulfilled', 'incoming executed', 'fulfilled', false],
    ['lost', 'incoming executed', 'fulfilled', true], // it made it after all
    ['prepared', 'incoming executed', 'prepared', false],
    ['rejecting', 'incoming rejected', 'rejected', true],
    ['forwarding', 'incoming rejected', 'rejected', true],
    ['prepared', 'incoming rejected', 'prepared', false], // the outgoing transfer's outcome decides
    ['fulfilling', 'incoming rejected', 'fulfilling', false], // the pass-back job will find it lost
    ['rejected', 'incoming rejected', 'rejected', false],
    ['none', 'incoming executed', 'none', false], // an optimistic transfer to the connector: funding
    ['none', 'incoming rejected', 'none', false],
    ['none', 'outgoing prepared', 'none', false],
    ['none', 'outgoing executed', 'none', false],
  ])('%s + %s → %s', (before, event, after, written) => {
    const transition = apply(before === 'none' ? undefined : paymentIn(before), event);
    expect(transition.payment?.state ?? 'none').toBe(after);
    expect(transition.changed).toBe(written);
  });

  test('a new payment records the incoming transfer and the planned outgoing transfer', () => {
    const { payment } = apply(undefined, 'incoming prepared');
    expect(payment).toMatchObject({
      id: outgoingId,
      incomingLedgerPrefix: 'private.central.',
      incomingTransferId: incomingId,
      incomingAmount: 898200n,
      state: 'forwarding',
      outgoing: {
        ledgerPrefix: 'private.dfsp-b.',
        creditAccount: 'bob',
        amount: 8964n,
        expiresAt: new Date(now.getTime() + 4000),
      },
      nextAttemptAt: new Date(now.getTime() + 1000),
    });
    expect(payment?.executionCondition.equals(condition)).toBe(true);
    expect(payment?.ilpPacket.equals(ilpPacket)).toBe(true);
    // The jobs continue the trace the incoming transfer was prepared in.
    expect(payment?.traceParent).toBe(traceParent);
  });

  test('an incoming transfer that cannot be forwarded is to be rejected with the reason', () => {
    const { notification: delivered, ledger } = notification('incoming prepared');
    delivered.transfer.ilpPacket = serializeIlpPayment({
      account: 'private.dfsp-b.bob',
      amount: 9999n,
      data: Buffer.alloc(0),
    });
    const { payment } = applyNotification(undefined, delivered, ledger, context, now);
    expect(payment?.state).toBe('rejecting');
    expect(payment?.outgoing).toBeNull();
    expect(payment?.ilpError).toMatchObject({
      code: 'R01',
      triggeredBy: 'private.central.connector-b',
      forwardedBy: [],
    });
  });

  test('an incoming transfer that has already expired is recorded as rejected, with nothing to do', () => {
    const { notification: delivered, ledger } = notification('incoming prepared');
    delivered.transfer.expiresAt = new Date(now.getTime() - 1);
    expect(applyNotification(undefined, delivered, ledger, context, now).payment?.state).toBe('rejected');
  });

  test("a pass-back's or rejection's job lease ends in time for a retry before the incoming transfer expires", () => {
    // A lease of 10 s (the default) would end after the incoming expiry, 5 s away.
    const longLease = createTransitionContext(settings, { jobLeaseMs: 10_000 });
    const settleBy = new Date(now.getTime() + 5000 - settleLeaseMarginMs);
    const applied = (payment: Payment | undefined, event: Event) => {
      const { notification: delivered, ledger } = notification(event);
      return applyNotification(payment, delivered, ledger, longLease, now).payment;
    };
    expect(applied(paymentIn('prepared'), 'outgoing executed')).toMatchObject({
      state: 'fulfilling',
      nextAttemptAt: settleBy,
    });
    expect(applied(paymentIn('prepared'), 'outgoing cancelled')).toMatchObject({
      state: 'rejecting',
      nextAttemptAt: settleBy,
    });
    // A forward keeps the whole lease: its own deadline is the outgoing transfer's.
    expect(applied(undefined, 'incoming prepared')).toMatchObject({
      state: 'forwarding',
      nextAttemptAt: new Date(now.getTime() + 10_000),
    });
  });

  test('the fulfillment is kept when the outgoing transfer executes', () => {
    const { payment } = apply(paymentIn('prepared'), 'outgoing executed');
    expect(payment?.fulfillment?.equals(preimage)).toBe(true);
  });

  test('an outgoing execution whose fulfillment does not match the condition changes nothing, loudly', () => {
    const { notification: delivered, ledger } = notification('outgoing executed');
    delivered.fulfillment = randomBytes(32);
    const transition = applyNotification(paymentIn('prepared'), delivered, ledger, context, now);
    expect(transition.changed).toBe(false);
    expect(transition.note?.level).toBe('error');
  });

  test("a cancelled outgoing transfer's error is relayed with the connector appended to forwarded_by", () => {
    const { payment } = apply(paymentIn('prepared'), 'outgoing cancelled');
    expect(payment?.ilpError).toEqual({ ...bobsError, forwardedBy: ['private.central.connector-b'] });
  });

  test('an expired outgoing transfer becomes R00 Transfer Timed Out, raised by the connector', () => {
    const { payment } = apply(paymentIn('prepared'), 'outgoing expired');
    expect(payment?.ilpError).toMatchObject({
      code: 'R00',
      name: 'Transfer Timed Out',
      triggeredBy: 'private.central.connector-b',
      forwardedBy: [],
    });
  });

  test('a transfer that neither debits nor credits the connector is none of its business', () => {
    const { notification: delivered, ledger } = notification('incoming prepared');
    delivered.transfer.creditAccount = 'somebody-else';
    expect(applyNotification(undefined, delivered, ledger, context, now)).toEqual({
      payment: undefined,
      changed: false,
    });
  });
});

describe('duplicates and replays are harmless (property)', () => {
  const paths: Record<string, Event[]> = {
    fulfilled: ['incoming prepared', 'outgoing prepared', 'outgoing executed', 'incoming executed'],
    'rejected by bob': ['incoming prepared', 'outgoing prepared', 'outgoing cancelled', 'incoming rejected'],
    'timed out': ['incoming prepared', 'outgoing prepared', 'outgoing expired', 'incoming rejected'],
  };
  test.each(Object.entries(paths))('%s: any replay of earlier notifications ends the same', (_name, path) => {
    let expected: Payment | undefined;
    for (const event of path) expected = apply(expected, event).payment;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(path.length - 1), fc.nat(path.length - 1)), { maxLength: 12 }),
        (replays) => {
          // Deliver the path in order; after step i, replay the notification of any step ≤ i.
          const delivered: Event[] = [];
          path.forEach((event, index) => {
            delivered.push(event);
            for (const [after, replayed] of replays)
              if (after === index && replayed <= index) delivered.push(path[replayed]);
          });
          let payment: Payment | undefined;
          for (const event of delivered) payment = apply(payment, event).payment;
          expect(payment?.state).toBe(expected?.state);
          expect(payment?.ilpError?.forwardedBy).toEqual(expected?.ilpError?.forwardedBy);
        },
      ),
    );
  });
});
