/**
 * Sends a payment through a running network (from its manifest) and reports each hop as it is
 * prepared and executed: the demo payment of `interclear network` and `interclear pay`.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { PaymentState, type Payment, type WatchPaymentResponse } from '../gen/interclear/spsp/v1/spsp';
import { formatAmount } from '../ilp';
import { createLedgerClient } from '../ledger/client';
import type { ClientIdentity } from '../platform/client';
import { channelCredentials } from '../platform/tls';
import { ConfigError } from '../platform/config';
import { createPaymentClient } from '../spsp/client';
import { parseReceiverName } from '../spsp/receivers';
import type { ManifestDfsp, ManifestLedger, NetworkManifest } from './manifest';
import { describeHop, PaymentTracer, type HopEvent } from './tracer';

/** A payment to send. */
export interface PaymentOrderOptions {
  /** The sender, "name@dfsp": its DFSP's PaymentService pays from its account. */
  from: string;
  /** The receiver, "name@dfsp" or an ILP address. */
  to: string;
  fixed: 'source' | 'destination';
  /** Minor units of the fixed side's ledger. */
  amount: bigint;
  paymentId?: string;
  data?: Buffer;
}

/** The DFSP and account of a sender "name@dfsp". */
export function senderOf(manifest: NetworkManifest, sender: string): { dfsp: ManifestDfsp; account: string } {
  const name = parseReceiverName(sender);
  if (name?.kind !== 'identifier')
    throw new ConfigError('--from', `must be a customer like alice@dfsp-a, got "${sender}"`);
  const dfsp = manifest.dfsps.find((candidate) => candidate.name === name.dfsp);
  if (!dfsp) {
    throw new ConfigError(
      '--from',
      `the network has no DFSP "${name.dfsp}" (it has ${manifest.dfsps.map((d) => d.name).join(', ')})`,
    );
  }
  return { dfsp, account: name.name };
}

/** The ledger of the DFSP that `receiver` belongs to, if the manifest knows it. */
function receiverLedger(manifest: NetworkManifest, receiver: string): ManifestLedger | undefined {
  const name = parseReceiverName(receiver);
  if (name?.kind === 'identifier') {
    const dfsp = manifest.dfsps.find((candidate) => candidate.name === name.dfsp);
    return manifest.ledgers.find((ledger) => ledger.name === dfsp?.ledger);
  }
  if (name?.kind === 'address') return manifest.ledgers.find((ledger) => name.address.startsWith(ledger.prefix));
  return undefined;
}

/** The identity of the network's administrator. */
export function adminIdentity(manifest: NetworkManifest): ClientIdentity {
  if (manifest.tls) {
    return {
      credentials: channelCredentials({
        certificate: manifest.tls.certificate,
        privateKey: manifest.tls.privateKey,
        authority: manifest.tls.ca,
      }),
    };
  }
  return { principal: manifest.adminPrincipal };
}

/**
 * Pays `order` through the network, calling `onHop` for each transfer as it happens. Resolves
 * with the payment in its final state; rejects with the PaymentService's error when the payment
 * failed before any money was held.
 */
export async function sendTracedPayment(
  manifest: NetworkManifest,
  order: PaymentOrderOptions,
  onHop: (event: HopEvent) => void,
  identity: ClientIdentity = adminIdentity(manifest),
): Promise<Payment> {
  const sender = senderOf(manifest, order.from);
  const sourceLedger = manifest.ledgers.find((ledger) => ledger.name === sender.dfsp.ledger);
  const destinationLedger = receiverLedger(manifest, order.to);
  const hub = manifest.ledgers.find((ledger) => ledger.dfsp === null);
  const path = [sourceLedger, hub, destinationLedger]
    .filter((ledger) => ledger !== undefined)
    .map((ledger) => ledger.name);
  const tracer = new PaymentTracer(manifest.ledgers, identity, onHop);
  const client = createPaymentClient(sender.dfsp.spsp, identity);
  try {
    await tracer.start();
    const paymentId = order.paymentId ?? randomUUID();
    let done = false;
    const paying = client
      .pay({
        paymentId,
        senderAccount: sender.account,
        receiver: order.to,
        amount:
          order.fixed === 'source'
            ? { $case: 'sourceAmount', value: order.amount }
            : { $case: 'destinationAmount', value: order.amount },
        data: order.data ?? Buffer.alloc(0),
      })
      .finally(() => (done = true));
    // The condition is known once the receiver set the payment up: watch for it, so that the
    // hops show as they happen rather than after the fact.
    const watching = new Promise<void>((resolve) => {
      const open = () => {
        if (done) return resolve();
        const stream = client.watchPayment({ paymentId });
        stream.on('data', (response: WatchPaymentResponse) => {
          const condition = response.payment?.executionCondition;
          if (condition && condition.length === 32) {
            tracer.follow(Buffer.from(condition), path);
            stream.cancel();
            resolve();
          }
        });
        // The payment is recorded a moment after Pay starts: until then the watch is NOT_FOUND.
        stream.on('error', (error: grpc.ServiceError) => {
          if (error.code === status.NOT_FOUND && !done) setTimeout(open, 25);
          else resolve();
        });
        stream.on('status', (result: grpc.StatusObject) => {
          if (result.code === status.OK) resolve();
        });
      };
      open();
    });
    const { payment } = await paying;
    await watching;
    if (payment?.executionCondition.length === 32) tracer.follow(Buffer.from(payment.executionCondition), path);
    // Pay returns when the first transfer is final; the other ledgers' notices may trail it.
    await tracer.settled(2_000);
    return payment!;
  } finally {
    tracer.stop();
    client.close();
  }
}

/** The line that reports a payment's outcome. */
export function describeOutcome(payment: Payment): string[] {
  const source = `${formatAmount(payment.sourceAmount, payment.sourceScale)} ${payment.sourceCurrencyCode}`;
  const destination = `${formatAmount(payment.destinationAmount, payment.destinationScale)} ${payment.destinationCurrencyCode}`;
  switch (payment.state) {
    case PaymentState.PAYMENT_STATE_EXECUTED:
      return [
        `executed: ${payment.receiver} received ${destination}; ${payment.senderAccount} paid ${source}`,
        `proof of payment (fulfillment): ${payment.fulfillment.toString('hex')}`,
        `condition:                      ${payment.executionCondition.toString('hex')}`,
      ];
    default: {
      const error = payment.ilpError;
      const where = error
        ? ` raised by ${error.triggeredBy}${error.forwardedBy.length > 0 ? `, relayed by ${error.forwardedBy.join(', ')}` : ''}`
        : '';
      const state =
        payment.state === PaymentState.PAYMENT_STATE_REJECTED
          ? 'rejected'
          : payment.state === PaymentState.PAYMENT_STATE_EXPIRED
            ? 'expired'
            : `state ${payment.state}`;
      return [
        `${state}: ${error ? `${error.code} ${error.name}: ${error.message}` : 'no ILP error'}${where}`,
        `no money moved: the hold of ${source} on ${payment.senderAccount} returned`,
      ];
    }
  }
}

/** Balances of every planned account, by "ledger/account". */
export async function readBalances(
  manifest: NetworkManifest,
  identity: ClientIdentity = adminIdentity(manifest),
): Promise<Map<string, { ledger: ManifestLedger; account: string; balance: bigint; held: bigint }>> {
  const balances = new Map<string, { ledger: ManifestLedger; account: string; balance: bigint; held: bigint }>();
  for (const ledger of manifest.ledgers) {
    const client = createLedgerClient(ledger.address, identity);
    try {
      for (const account of ledger.accounts) {
        const response = await client.getAccount({ name: account.name }, { timeoutMs: 5_000 });
        balances.set(`${ledger.name}/${account.name}`, {
          ledger,
          account: account.name,
          balance: response.account?.balance ?? 0n,
          held: response.account?.heldAmount ?? 0n,
        });
      }
    } finally {
      client.close();
    }
  }
  return balances;
}

/** Lines of a before/after balance table. */
export function describeBalances(
  before: Awaited<ReturnType<typeof readBalances>>,
  after: Awaited<ReturnType<typeof readBalances>>,
): string[] {
  const format = (amount: bigint, ledger: ManifestLedger) => {
    const sign = amount < 0n ? '-' : '';
    const magnitude = amount < 0n ? -amount : amount;
    return `${sign}${formatAmount(magnitude, ledger.scale)} ${ledger.currency}`;
  };
  const lines: string[] = [];
  for (const [key, entry] of before) {
    const next = after.get(key);
    if (!next) continue;
    const change = next.balance - entry.balance;
    const delta =
      change === 0n ? '' : `  (${change > 0n ? '+' : '-'}${format(change < 0n ? -change : change, entry.ledger)})`;
    const held = next.held > 0n ? `  [${format(next.held, entry.ledger)} held]` : '';
    lines.push(
      `${entry.ledger.name.padEnd(8)} ${entry.account.padEnd(12)} ${format(entry.balance, entry.ledger).padStart(22)} → ${format(next.balance, entry.ledger).padStart(22)}${delta}${held}`,
    );
  }
  return lines;
}

export { describeHop };
