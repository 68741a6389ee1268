import { forwardOutcome, jobOf, nextAttemptAt, passBackOutcome, rejectOutcome, type JobOutcome } from './jobs';
import type { LedgerCallResult } from './ledgers';
import type { IlpError, Payment, PaymentState } from './model';

const now = new Date('2030-01-01T00:00:00.000Z');
const connectorAddress = 'private.central.connector-b';

function payment(state: PaymentState, incomingExpiresInMs = 5000, ilpError: IlpError | null = null): Payment {
  return {
    id: '00000000-0000-8000-8000-000000000001',
    incomingLedgerPrefix: 'private.central.',
    incomingTransferId: '00000000-0000-4000-8000-000000000002',
    incomingAmount: 1000n,
    incomingExpiresAt: new Date(now.getTime() + incomingExpiresInMs),
    executionCondition: Buffer.alloc(32),
    ilpPacket: Buffer.alloc(0),
    traceParent: null,
    outgoing: {
      ledgerPrefix: 'private.dfsp-b.',
      creditAccount: 'bob',
      amount: 900n,
      expiresAt: new Date(now.getTime() + 4000),
    },
    state,
    fulfillment: null,
    ilpError,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    updatedAt: now,
  };
}

const ok: LedgerCallResult<void> = { kind: 'ok', value: undefined };
const unavailable: LedgerCallResult<void> = { kind: 'unavailable', message: 'connection refused' };
const refused = (reason: string, metadata: Record<string, string> = {}): LedgerCallResult<void> => ({
  kind: 'refused',
  reason,
  message: reason.toLowerCase(),
  metadata,
});

/** The outcome reduced to what a table can show: done, retry, or the new state and ILP code. */
function summary(outcome: JobOutcome): string {
  if (outcome.kind !== 'move') return outcome.kind;
  return [outcome.to, outcome.ilpError?.code, outcome.lostMoney ? 'lost money' : undefined].filter(Boolean).join(' ');
}

test.each<[PaymentState, string | undefined]>([
  ['forwarding', 'forward'],
  ['prepared', undefined],
  ['fulfilling', 'pass-back'],
  ['fulfilled', undefined],
  ['rejecting', 'reject'],
  ['rejected', undefined],
  ['lost', undefined],
])('a payment %s has job %s', (state, job) => {
  expect(jobOf(state)).toBe(job);
});

describe('forward: preparing the outgoing transfer', () => {
  test.each<[string, LedgerCallResult<void>, number, string]>([
    // case, answer, incoming expiry (ms from now), outcome
    ['prepared (or already there)', ok, 5000, 'done'],
    ['no answer: retried, the transfer may exist', unavailable, 5000, 'retry'],
    ['no answer after the incoming transfer expired: give up', unavailable, 0, 'rejected'],
    ['insufficient funds: T04', refused('INSUFFICIENT_FUNDS'), 5000, 'rejecting T04'],
    ['receiver unknown: F02', refused('ACCOUNT_NOT_FOUND', { account: 'bob' }), 5000, 'rejecting F02'],
    ['receiver disabled: F02', refused('ACCOUNT_DISABLED', { account: 'bob' }), 5000, 'rejecting F02'],
    [
      "the connector's own account disabled: T04",
      refused('ACCOUNT_DISABLED', { account: 'connector-b' }),
      5000,
      'rejecting T04',
    ],
    ['expired before it could be prepared: R00', refused('TRANSFER_EXPIRED'), 5000, 'rejecting R00'],
    ['malformed for this ledger: F00', refused('INVALID_ARGUMENT'), 5000, 'rejecting F00'],
    ['the receiver cannot hold more: F07', refused('BALANCE_OVERFLOW'), 5000, 'rejecting F07'],
    ['not allowed: T00', refused('PERMISSION_DENIED'), 5000, 'rejecting T00'],
    // The id is taken: never reject while a transfer with this id may execute.
    ['id taken by other content: left to notifications', refused('ALREADY_EXISTS'), 5000, 'done'],
  ])('%s', (_case, result, expiresInMs, expected) => {
    const outcome = forwardOutcome(payment('forwarding', expiresInMs), result, {
      connectorAddress,
      ownAccount: 'connector-b',
      now,
    });
    expect(summary(outcome)).toBe(expected);
    if (outcome.kind === 'move' && outcome.ilpError) expect(outcome.ilpError.triggeredBy).toBe(connectorAddress);
  });
});

describe('pass-back: fulfilling the incoming transfer', () => {
  test.each<[string, LedgerCallResult<void>, number, string]>([
    ['fulfilled (or already, with the same fulfillment)', ok, 5000, 'done'],
    ['no answer: retried', unavailable, 5000, 'retry'],
    ['no answer, and the incoming transfer has expired', unavailable, 0, 'lost lost money'],
    ['refused as expired', refused('TRANSFER_EXPIRED'), 5000, 'lost lost money'],
    ['already rejected', refused('TRANSFER_ALREADY_FINAL', { state: 'rejected' }), 5000, 'lost lost money'],
    ['already executed: a success', refused('TRANSFER_ALREADY_FINAL', { state: 'executed' }), 5000, 'done'],
    ['unknown transfer', refused('TRANSFER_NOT_FOUND'), 5000, 'lost lost money'],
    ['condition mismatch', refused('UNMET_CONDITION'), 5000, 'lost lost money'],
    ['a refusal that may pass (permissions being fixed): retried', refused('PERMISSION_DENIED'), 5000, 'retry'],
  ])('%s', (_case, result, expiresInMs, expected) => {
    expect(summary(passBackOutcome(payment('fulfilling', expiresInMs), result, now))).toBe(expected);
  });
});

describe('reject: rejecting the incoming transfer', () => {
  const relayed: IlpError = {
    code: 'F99',
    name: 'Application Error',
    message: 'no',
    triggeredBy: 'private.dfsp-b.bob',
    forwardedBy: [connectorAddress],
    data: Buffer.alloc(0),
  };
  test.each<[string, LedgerCallResult<void>, number, string]>([
    ['rejected', ok, 5000, 'done'],
    ['no answer: retried', unavailable, 5000, 'retry'],
    ['no answer, and the incoming transfer has expired: its hold is back anyway', unavailable, 0, 'rejected'],
    ['already expired', refused('TRANSFER_EXPIRED'), 5000, 'rejected'],
    ['already final', refused('TRANSFER_ALREADY_FINAL'), 5000, 'rejected'],
    ['already rejected with another ILP error', refused('ALREADY_EXISTS'), 5000, 'rejected'],
    ['a relayed error the ledger refuses: reject with our own', refused('INVALID_ARGUMENT'), 5000, 'rejecting T00'],
  ])('%s', (_case, result, expiresInMs, expected) => {
    expect(summary(rejectOutcome(payment('rejecting', expiresInMs, relayed), result, { connectorAddress, now }))).toBe(
      expected,
    );
  });
});

describe('retry schedule', () => {
  const backoff = { initialMs: 50, maximumMs: 2000 };
  test.each<[number, number, number]>([
    // attempts, incoming expiry (ms from now), delay (ms) with no jitter
    [1, 60_000, 100],
    [2, 60_000, 200],
    [10, 60_000, 2000], // capped
    [10, 500, 480], // the last chance comes just before the incoming expiry
    [1, 0, 10], // past the expiry: once more soon, to conclude
  ])('attempt %i, incoming expiring in %i ms: next in %i ms', (attempts, expiresInMs, delayMs) => {
    const at = nextAttemptAt(payment('fulfilling', expiresInMs), attempts, backoff, now, () => 0.5);
    expect(at.getTime() - now.getTime()).toBe(delayMs);
  });
});
