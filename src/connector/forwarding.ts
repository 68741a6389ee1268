/**
 * The forwarding decision for an incoming prepared transfer: what to prepare on which ledger, or
 * which ILP error to reject it with. Checked in this order of precedence:
 *
 *   1. the incoming transfer has not expired yet (else nothing is done: it expires by itself);
 *   2. the ILP packet parses (F01 Invalid Packet);
 *   3. a route matches the destination and leaves on another ledger (F02 Unreachable);
 *   4. at the last hop, the destination names an account other than the connector's (F02);
 *   5. the amount: at the last hop exactly the packet amount, which the incoming amount must
 *      cover at the rate less the spread (R01 Insufficient Source Amount); otherwise the incoming
 *      amount at that rate, rounded down, which must not be zero (R01);
 *   6. the expiry leaves the next hop at least a message window (R02 Insufficient Timeout).
 *
 * Insufficient liquidity (T04) is learnt from the outgoing ledger when preparing.
 */
import { deserializeIlpPayment, IlpError as IlpLibraryError, InvalidAmountError, type Rational } from '../ilp';
import { connectorIlpError } from './errors';
import { outgoingExpiry } from './expiry';
import type { IlpError, LedgerEndpoint, ObservedTransfer, OutgoingTransfer } from './model';
import { hopDestinationAmount } from './rates';
import type { RateSource } from './rates';
import { destinationAccount, type RoutingTable } from './routing';

/** What a forwarding decision needs to know. */
export interface ForwardingContext {
  connectorAddress: string;
  ledgers: ReadonlyMap<string, LedgerEndpoint>;
  routing: RoutingTable;
  rates: RateSource;
  spread: Rational;
  messageWindowMs: number;
  /** The longest hold on the outgoing ledger: the connector's maximum, capped by the ledger's. */
  maxHoldMs(ledgerPrefix: string): number;
  /** The largest amount a ledger takes (its precision, at most 2^63 - 1). */
  maxAmount(ledgerPrefix: string): bigint;
}

/** What to do with an incoming prepared transfer. */
export type ForwardDecision =
  { kind: 'forward'; outgoing: OutgoingTransfer } | { kind: 'reject'; error: IlpError } | { kind: 'expired' };

/** Decides how to forward `incoming`, received on the ledger of `incomingLedgerPrefix`, at `now`. */
export function decideForward(
  incoming: Pick<ObservedTransfer, 'amount' | 'expiresAt' | 'ilpPacket'>,
  incomingLedgerPrefix: string,
  context: ForwardingContext,
  now: Date,
): ForwardDecision {
  const reject = (code: Parameters<typeof connectorIlpError>[0], message: string): ForwardDecision => ({
    kind: 'reject',
    error: connectorIlpError(code, message, context.connectorAddress, now),
  });
  if (incoming.expiresAt === null || incoming.expiresAt.getTime() <= now.getTime()) return { kind: 'expired' };

  let packet;
  try {
    packet = deserializeIlpPayment(incoming.ilpPacket);
  } catch (error) {
    return reject('F01', `the ILP packet is invalid: ${(error as Error).message}`);
  }

  const route = context.routing.find(packet.account);
  if (!route) return reject('F02', `no route to ${packet.account}`);
  if (route.ledgerPrefix === incomingLedgerPrefix) {
    return reject('F02', `${packet.account} is reached through the ledger the payment came from`);
  }
  const source = context.ledgers.get(incomingLedgerPrefix);
  const destination = context.ledgers.get(route.ledgerPrefix);
  // Routes only name configured ledgers and events only come from them.
  if (!source || !destination) throw new Error(`unknown ledger ${!source ? incomingLedgerPrefix : route.ledgerPrefix}`);

  let creditAccount: string;
  if (route.local) {
    const account = destinationAccount(packet.account, route.ledgerPrefix);
    if (account === undefined)
      return reject('F02', `${packet.account} does not name an account on ${route.ledgerPrefix}`);
    if (account === destination.account) return reject('F02', `${packet.account} is the connector itself`);
    creditAccount = account;
  } else {
    creditAccount = route.nextHop.account;
  }

  const rate = context.rates.rate(source.currency, destination.currency);
  if (!rate) return reject('F02', `no exchange rate from ${source.currency} to ${destination.currency}`);
  let deliverable: bigint;
  try {
    deliverable = hopDestinationAmount(incoming.amount, {
      rate,
      spread: context.spread,
      sourceScale: source.scale,
      destinationScale: destination.scale,
    });
  } catch (error) {
    if (error instanceof InvalidAmountError || error instanceof IlpLibraryError) return reject('F03', error.message);
    throw error;
  }
  let amount: bigint;
  if (route.local) {
    if (packet.amount === 0n) return reject('F03', 'the packet amount is zero');
    if (deliverable < packet.amount) {
      return reject(
        'R01',
        `the incoming amount ${incoming.amount} buys ${deliverable} on ${route.ledgerPrefix}, less than the packet amount ${packet.amount}`,
      );
    }
    amount = packet.amount;
  } else {
    if (deliverable === 0n)
      return reject('R01', `the incoming amount ${incoming.amount} buys nothing on ${route.ledgerPrefix}`);
    amount = deliverable;
  }
  const maxAmount = context.maxAmount(route.ledgerPrefix);
  if (amount > maxAmount) {
    return reject(
      'F03',
      `the outgoing amount ${amount} is more than ${route.ledgerPrefix} takes (at most ${maxAmount})`,
    );
  }

  const expiry = outgoingExpiry({
    incomingExpiresAt: incoming.expiresAt,
    now,
    messageWindowMs: context.messageWindowMs,
    maxHoldMs: context.maxHoldMs(route.ledgerPrefix),
  });
  if (expiry.kind === 'expired') return { kind: 'expired' };
  if (expiry.kind === 'insufficient-timeout') {
    return reject(
      'R02',
      `only ${expiry.remainingMs} ms would remain for the next hop, less than the message window of ${context.messageWindowMs} ms`,
    );
  }
  return {
    kind: 'forward',
    outgoing: { ledgerPrefix: route.ledgerPrefix, creditAccount, amount, expiresAt: expiry.expiresAt },
  };
}
