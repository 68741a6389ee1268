/**
 * The payment traffic of a chaos run: a steady, bounded stream of Pay calls through the SPSP
 * services' PaymentService — each customer paying each other DFSP's customer, by fixed
 * destination and by fixed source amounts, in turn — as a DFSP's own systems would send them.
 *
 * A Pay that gets no answer from the service (it is down, paused, or its connection was cut)
 * or whose outcome the service cannot tell yet is repeated with the same payment id, as the
 * contract invites: so the run also tests that a repeated Pay never pays twice. Everything else
 * is the payment's answer. The run later asks every SPSP service what it recorded
 * (GetPayment); these answers are checked against that record.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  PaymentServiceClient,
  PaymentState,
  type Payment,
  type PayRequest,
  type PayResponse,
} from '../gen/interclear/spsp/v1/spsp';
import type { NetworkManifest } from '../network/manifest';
import { channelOptions, identityMetadata, type ClientIdentity } from '../platform/client';
import { decodeGrpcError } from '../platform/errors';

/** One kind of payment the traffic sends. */
export interface PaymentOrder {
  /** The sender, "name@dfsp". */
  from: string;
  /** The receiver, "name@dfsp". */
  to: string;
  /** The sender's SPSP service (PaymentService), host:port. */
  spsp: string;
  senderAccount: string;
  fixed: 'source' | 'destination';
  /** Minor units of the fixed side's ledger. */
  amount: bigint;
}

/** A failed call, as far as the caller can tell. */
export interface CallFailure {
  code: grpc.status;
  /** ErrorInfo reason; absent when the service did not answer (transport failure). */
  reason?: string;
  /** ErrorInfo domain: present only when a service answered. */
  domain?: string;
  message: string;
}

/** One payment of the traffic and what Pay answered. */
export interface SentPayment {
  id: string;
  order: PaymentOrder;
  /** When the first Pay was sent, in milliseconds since the traffic started. */
  sentAtMs: number;
  /** Pay calls made (1 + repeats). */
  calls: number;
  /** The last answer: the payment (final, as Pay answers), or the failure. */
  answer?: { kind: 'payment'; payment: Payment } | { kind: 'failure'; failure: CallFailure };
  /** An answer a service should never give (INTERNAL or UNKNOWN from its own handler). */
  unexpected: CallFailure[];
  /** Still calling Pay. */
  inFlight: boolean;
}

/** Counts for progress lines. */
export interface TrafficCounts {
  sent: number;
  inFlight: number;
  executed: number;
  rejected: number;
  failed: number;
  /** Pay answered nothing final (yet). */
  unanswered: number;
  /** Ticks skipped because `maximumInFlight` payments were already in flight. */
  skipped: number;
}

/** What shapes the traffic. */
export interface TrafficOptions {
  manifest: NetworkManifest;
  /** The identity of the DFSPs' own systems: the network's administrator. */
  identity: ClientIdentity;
  /** Payments started per second. */
  ratePerSecond: number;
  /** At most this many payments in flight; a tick finding them all busy is skipped. */
  maximumInFlight: number;
}

/** What each Pay call may take: the contract's advice (the quote's hold plus a margin). */
const payDeadlineMs = 30_000;
/** Pay calls per payment at most (1 + repeats). */
const maximumCalls = 30;

/** Fixed amounts by currency, in minor units: a few tens of dollars' worth. */
const amountByCurrency: Record<string, bigint> = { USD: 2_000n, EUR: 2_000n, XOF: 10_000n };

/** Every kind of payment between the network's DFSPs: both directions, both fixed sides. */
export function paymentOrders(manifest: NetworkManifest): PaymentOrder[] {
  const orders: PaymentOrder[] = [];
  const amountOn = (dfspName: string) => {
    const dfsp = manifest.dfsps.find((candidate) => candidate.name === dfspName)!;
    const ledger = manifest.ledgers.find((candidate) => candidate.name === dfsp.ledger)!;
    return amountByCurrency[ledger.currency] ?? 10n ** BigInt(ledger.scale) * 20n;
  };
  for (const sender of manifest.dfsps) {
    for (const receiver of manifest.dfsps) {
      if (receiver === sender || sender.customers.length === 0 || receiver.customers.length === 0) continue;
      const from = sender.customers[0];
      const to = receiver.customers[0];
      const base = { from, to, spsp: sender.spsp, senderAccount: from.split('@')[0] };
      orders.push({ ...base, fixed: 'destination', amount: amountOn(receiver.name) });
      orders.push({ ...base, fixed: 'source', amount: amountOn(sender.name) });
    }
  }
  // Interleave directions: A→B by destination, B→A by destination, A→B by source, …
  return orders.sort((left, right) => (left.fixed === right.fixed ? 0 : left.fixed === 'destination' ? -1 : 1));
}

/** Whether `failure` means the payment's outcome is not known yet, so Pay should be repeated. */
function isRetryable(failure: CallFailure): boolean {
  // No ErrorInfo: the service did not answer (down, paused, connection cut, deadline).
  if (failure.domain === undefined) return true;
  // The attempt died with its process, or the ledger cannot tell the outcome yet.
  return failure.reason === 'PAYMENT_INTERRUPTED' || failure.reason === 'LEDGER_UNAVAILABLE';
}

function failureOf(error: unknown): CallFailure {
  const decoded = decodeGrpcError(error as grpc.ServiceError);
  return {
    code: decoded.code ?? grpc.status.UNKNOWN,
    reason: decoded.reason,
    domain: decoded.domain,
    message: decoded.message,
  };
}

const finalStates = new Set([
  PaymentState.PAYMENT_STATE_EXECUTED,
  PaymentState.PAYMENT_STATE_REJECTED,
  PaymentState.PAYMENT_STATE_EXPIRED,
  PaymentState.PAYMENT_STATE_FAILED,
]);

/** Whether a payment state is final. */
export function isFinalState(state: PaymentState): boolean {
  return finalStates.has(state);
}

/** The traffic: start it, stop it, read what it sent. */
export class PaymentTraffic {
  readonly payments: SentPayment[] = [];
  private readonly orders: PaymentOrder[];
  private readonly clients = new Map<string, PaymentServiceClient>();
  private readonly calls = new Set<Promise<void>>();
  /** Pay calls on the wire, cancelled when the traffic settles. */
  private readonly open = new Set<grpc.ClientUnaryCall>();
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private skipped = 0;
  private readonly stopping = new AbortController();
  /** Pay repeats stop at this time (epoch milliseconds). */
  private repeatDeadline = Number.POSITIVE_INFINITY;

  constructor(private readonly options: TrafficOptions) {
    // Every payment waiting to repeat its Pay listens for the stop: as many as may be in flight.
    setMaxListeners(options.maximumInFlight + 1, this.stopping.signal);
    this.orders = paymentOrders(options.manifest);
    if (this.orders.length === 0) throw new Error('the network has no two DFSPs with customers to pay each other');
  }

  /** Starts sending, `ratePerSecond` payments a second. */
  start(): void {
    this.startedAt = Date.now();
    const intervalMs = Math.max(1, Math.round(1000 / this.options.ratePerSecond));
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  /** Stops starting payments; those in flight go on (see {@link settle}). */
  stopSending(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Waits for the payments in flight until `deadline` (epoch milliseconds); Pay is not repeated
   * after it, and calls still open then are cancelled.
   */
  async settle(deadline: number): Promise<void> {
    this.stopSending();
    this.repeatDeadline = deadline;
    const remaining = deadline - Date.now();
    if (this.calls.size > 0 && remaining > 0) {
      await Promise.race([Promise.all([...this.calls]), delay(remaining, undefined, { ref: false })]);
    }
    this.stopping.abort();
    for (const call of this.open) call.cancel();
    await Promise.all([...this.calls]);
  }

  /** Closes the clients (after {@link settle}). */
  close(): void {
    this.stopSending();
    this.stopping.abort();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  counts(): TrafficCounts {
    const counts: TrafficCounts = {
      sent: this.payments.length,
      inFlight: 0,
      executed: 0,
      rejected: 0,
      failed: 0,
      unanswered: 0,
      skipped: this.skipped,
    };
    for (const payment of this.payments) {
      if (payment.inFlight) counts.inFlight += 1;
      const answer = payment.answer;
      if (answer?.kind === 'payment') {
        const state = answer.payment.state;
        if (state === PaymentState.PAYMENT_STATE_EXECUTED) counts.executed += 1;
        else if (state === PaymentState.PAYMENT_STATE_REJECTED || state === PaymentState.PAYMENT_STATE_EXPIRED)
          counts.rejected += 1;
        else if (state === PaymentState.PAYMENT_STATE_FAILED) counts.failed += 1;
        else if (!payment.inFlight) counts.unanswered += 1;
      } else if (answer?.kind === 'failure' && !isRetryable(answer.failure)) {
        counts.failed += 1;
      } else if (!payment.inFlight) {
        counts.unanswered += 1;
      }
    }
    return counts;
  }

  /** One Pay call to the SPSP service at `address`, cancellable through {@link open}. */
  private callPay(address: string, request: PayRequest): Promise<PayResponse> {
    let client = this.clients.get(address);
    if (!client) {
      const { credentials } = this.options.identity;
      client = new PaymentServiceClient(address, credentials ?? grpc.credentials.createInsecure(), channelOptions);
      this.clients.set(address, client);
    }
    const metadata = identityMetadata(this.options.identity);
    return new Promise((resolve, reject) => {
      const call = client.pay(request, metadata, { deadline: Date.now() + payDeadlineMs }, (error, response) => {
        this.open.delete(call);
        if (error) reject(error);
        else resolve(response);
      });
      this.open.add(call);
    });
  }

  private tick(): void {
    const inFlight = this.payments.filter((payment) => payment.inFlight).length;
    if (inFlight >= this.options.maximumInFlight) {
      this.skipped += 1;
      return;
    }
    const order = this.orders[this.payments.length % this.orders.length];
    const payment: SentPayment = {
      id: randomUUID(),
      order,
      sentAtMs: Date.now() - this.startedAt,
      calls: 0,
      unexpected: [],
      inFlight: true,
    };
    this.payments.push(payment);
    const call = this.pay(payment).finally(() => {
      payment.inFlight = false;
      this.calls.delete(call);
    });
    this.calls.add(call);
  }

  /** Calls Pay until it answers with the payment or a final failure, repeating it when it cannot tell. */
  private async pay(payment: SentPayment): Promise<void> {
    const { order } = payment;
    const signal = this.stopping.signal;
    let backoffMs = 250;
    while (payment.calls < maximumCalls && !signal.aborted) {
      payment.calls += 1;
      try {
        const response = await this.callPay(order.spsp, {
          paymentId: payment.id,
          senderAccount: order.senderAccount,
          receiver: order.to,
          amount:
            order.fixed === 'source'
              ? { $case: 'sourceAmount', value: order.amount }
              : { $case: 'destinationAmount', value: order.amount },
          data: Buffer.from(`chaos ${payment.id}`),
          maximumSourceAmount: undefined,
        });
        payment.answer = { kind: 'payment', payment: response.payment! };
        return;
      } catch (error) {
        const failure = failureOf(error);
        payment.answer = { kind: 'failure', failure };
        if (
          failure.domain !== undefined &&
          (failure.code === grpc.status.INTERNAL || failure.code === grpc.status.UNKNOWN)
        ) {
          payment.unexpected.push(failure);
        }
        if (!isRetryable(failure)) return;
      }
      if (Date.now() + backoffMs > this.repeatDeadline) return;
      try {
        await delay(backoffMs, undefined, { signal });
      } catch {
        return;
      }
      backoffMs = Math.min(backoffMs * 2, 2_000);
    }
  }
}
