/**
 * The connector's jobs — the calls it owes a ledger — and what each answer means for the
 * payment. Pure decisions, tested as tables; the runner (runner.ts) makes the calls.
 *
 * - forward (`forwarding`): prepare the outgoing transfer. Refusals become an ILP rejection of the
 *   incoming transfer; no answer is retried, because the transfer may exist.
 * - pass-back (`fulfilling`): fulfil the incoming transfer with the outgoing one's fulfillment.
 *   Retried until done or the incoming transfer has expired: then the connector lost money.
 * - reject (`rejecting`): reject the incoming transfer with the ILP error. Retried until done or
 *   the incoming transfer has expired, which returns the sender's hold just the same.
 *
 * A job that succeeds writes nothing: the ledger's notification of the change moves the payment,
 * and a job that runs again (after a crash) repeats an idempotent call.
 */
import { connectorIlpError } from './errors';
import type { LedgerCallResult } from './ledgers';
import type { IlpError, Payment, PaymentState } from './model';

/** The job of a payment in `state`, if any. */
export type JobKind = 'forward' | 'pass-back' | 'reject';

export function jobOf(state: PaymentState): JobKind | undefined {
  switch (state) {
    case 'forwarding':
      return 'forward';
    case 'fulfilling':
      return 'pass-back';
    case 'rejecting':
      return 'reject';
    default:
      return undefined;
  }
}

/** What to do after a job's call. */
export type JobOutcome =
  /** Nothing to write: the ledger's notification will move the payment. */
  | { kind: 'done'; note?: string }
  /** Try again later. */
  | { kind: 'retry'; error: string }
  /** Move the payment on (from the job's state, unless something moved it first). */
  | { kind: 'move'; to: PaymentState; ilpError?: IlpError; error: string; lostMoney?: boolean };

function describe(result: Exclude<LedgerCallResult<void>, { kind: 'ok' }>): string {
  return result.kind === 'refused' ? `${result.reason}: ${result.message}` : `unavailable: ${result.message}`;
}

function incomingExpired(payment: Payment, now: Date): boolean {
  return now.getTime() >= payment.incomingExpiresAt.getTime();
}

/** The ILP code of a ledger's refusal to prepare the outgoing transfer. */
function prepareRefusalCode(
  result: Extract<LedgerCallResult<void>, { kind: 'refused' }>,
  ownAccount: string,
): Parameters<typeof connectorIlpError>[0] {
  const ownAccountNamed = result.metadata.account === ownAccount;
  switch (result.reason) {
    case 'INSUFFICIENT_FUNDS':
      return 'T04';
    case 'ACCOUNT_NOT_FOUND':
    case 'ACCOUNT_DISABLED':
      // The connector's own account missing or disabled is a lack of liquidity, not a bad address.
      return ownAccountNamed ? 'T04' : 'F02';
    case 'TRANSFER_EXPIRED':
      return 'R00';
    case 'BALANCE_OVERFLOW':
      return 'F07';
    case 'INVALID_ARGUMENT':
      return 'F00';
    default:
      return 'T00';
  }
}

/** The outcome of preparing the outgoing transfer of `payment`. */
export function forwardOutcome(
  payment: Payment,
  result: LedgerCallResult<void>,
  context: { connectorAddress: string; ownAccount: string; now: Date },
): JobOutcome {
  if (result.kind === 'ok') return { kind: 'done' };
  if (result.kind === 'refused' && result.reason === 'ALREADY_EXISTS') {
    // The derived id is taken by a transfer with other content: never reject the incoming
    // transfer while a transfer with this id may execute; its notifications decide.
    return { kind: 'done', note: `the outgoing transfer id is taken by another transfer: ${result.message}` };
  }
  if (result.kind === 'unavailable') {
    if (incomingExpired(payment, context.now)) {
      return {
        kind: 'move',
        to: 'rejected',
        error: `gave up forwarding, the incoming transfer expired: ${describe(result)}`,
      };
    }
    return { kind: 'retry', error: describe(result) };
  }
  // A prepare that reached the ledger after its own expiry (the connector was paused, the ledger
  // slow) is refused as invalid, but the payment merely ran out of time: R00, which a sender may
  // retry, rather than F00.
  const timedOut =
    result.reason === 'INVALID_ARGUMENT' &&
    payment.outgoing !== null &&
    payment.outgoing.expiresAt.getTime() <= context.now.getTime();
  const code = timedOut ? 'R00' : prepareRefusalCode(result, context.ownAccount);
  const ledger = payment.outgoing?.ledgerPrefix ?? 'the outgoing ledger';
  return {
    kind: 'move',
    to: 'rejecting',
    ilpError: connectorIlpError(
      code,
      `${ledger} refused the outgoing transfer: ${result.message}`,
      context.connectorAddress,
      context.now,
    ),
    error: describe(result),
  };
}

// Answers after which fulfilling the incoming transfer can never succeed.
const finalFulfillRefusals = new Set([
  'TRANSFER_EXPIRED',
  'TRANSFER_ALREADY_FINAL',
  'TRANSFER_NOT_FOUND',
  'UNMET_CONDITION',
]);

/** The outcome of fulfilling the incoming transfer of `payment`. */
export function passBackOutcome(payment: Payment, result: LedgerCallResult<void>, now: Date): JobOutcome {
  if (result.kind === 'ok') return { kind: 'done' };
  // Already executed (a ledger that answers a repeat so rather than with the transfer): done.
  if (result.kind === 'refused' && result.reason === 'TRANSFER_ALREADY_FINAL' && result.metadata.state === 'executed') {
    return { kind: 'done' };
  }
  if (result.kind === 'refused' && finalFulfillRefusals.has(result.reason)) {
    return { kind: 'move', to: 'lost', error: describe(result), lostMoney: true };
  }
  if (incomingExpired(payment, now)) {
    return { kind: 'move', to: 'lost', error: `the incoming transfer expired: ${describe(result)}`, lostMoney: true };
  }
  return { kind: 'retry', error: describe(result) };
}

// Answers after which the incoming transfer is final anyway (ALREADY_EXISTS: it was rejected
// already, with another ILP error).
const finalRejectRefusals = new Set([
  'TRANSFER_EXPIRED',
  'TRANSFER_ALREADY_FINAL',
  'TRANSFER_NOT_FOUND',
  'ALREADY_EXISTS',
]);

/** The outcome of rejecting the incoming transfer of `payment`. */
export function rejectOutcome(
  payment: Payment,
  result: LedgerCallResult<void>,
  context: { connectorAddress: string; now: Date },
): JobOutcome {
  if (result.kind === 'ok') return { kind: 'done' };
  if (result.kind === 'refused' && finalRejectRefusals.has(result.reason)) {
    return { kind: 'move', to: 'rejected', error: describe(result) };
  }
  if (
    result.kind === 'refused' &&
    result.reason === 'INVALID_ARGUMENT' &&
    payment.ilpError?.triggeredBy !== context.connectorAddress
  ) {
    // A relayed error the ledger will not take (e.g. too many forwarded_by entries): reject with
    // an error of our own instead, which the ledger accepts.
    return {
      kind: 'move',
      to: 'rejecting',
      ilpError: connectorIlpError(
        'T00',
        `the error relayed from the next hop (${payment.ilpError?.code ?? 'none'}) was refused by the ledger: ${result.message}`,
        context.connectorAddress,
        context.now,
      ),
      error: describe(result),
    };
  }
  if (incomingExpired(payment, context.now)) {
    return { kind: 'move', to: 'rejected', error: `the incoming transfer expired: ${describe(result)}` };
  }
  return { kind: 'retry', error: describe(result) };
}

/** Backoff of a job's retries. */
export interface Backoff {
  initialMs: number;
  maximumMs: number;
}

/** The backoff's delay before attempt `attempts`, without jitter. */
export function backoffDelayMs(attempts: number, backoff: Backoff): number {
  return Math.min(backoff.maximumMs, backoff.initialMs * 2 ** Math.min(attempts, 20));
}

/**
 * When attempt `attempts` + 1 of a job runs: exponential backoff with jitter (so that retries
 * of many payments spread out), never after the incoming transfer's expiry when it can be before.
 */
export function nextAttemptAt(
  payment: Payment,
  attempts: number,
  backoff: Backoff,
  now: Date,
  random = Math.random,
): Date {
  const delayMs = Math.round(backoffDelayMs(attempts, backoff) * (0.75 + random() * 0.5));
  const lastChance = payment.incomingExpiresAt.getTime() - 20;
  const at = Math.min(now.getTime() + delayMs, Math.max(lastChance, now.getTime() + 10));
  return new Date(at);
}
