/**
 * Shows a payment hop by hop: follows the notification streams of the network's ledgers (as an
 * administrator, every account) and reports each transfer that carries the payment's condition
 * as it is prepared, executed or rejected. Events that arrive before the condition is known are
 * kept (a bounded number) and replayed once it is.
 */
import type * as grpc from '@grpc/grpc-js';
import { EventType, RejectionReason, type Event, type SubscribeResponse } from '../gen/interclear/ledger/v1/ledger';
import { formatAmount } from '../ilp';
import { createLedgerClient, type LedgerClient } from '../ledger/client';
import type { ClientIdentity } from '../platform/client';
import type { ManifestLedger } from './manifest';

/** What happened to one transfer of a payment. */
export interface HopEvent {
  /** 1 for the sender's ledger, then in payment order. */
  hop: number;
  ledger: ManifestLedger;
  state: 'prepared' | 'executed' | 'rejected';
  transferId: string;
  debitAccount: string;
  creditAccount: string;
  amount: bigint;
  expiryTime: Date | undefined;
  /** For rejected: the ILP error code and why, or "expired". */
  why: string;
}

/** The most events kept while the payment's condition is not known yet. */
const bufferedEventsMax = 10_000;

/** One line describing `event`, for people. */
export function describeHop(event: HopEvent): string {
  const amount = `${formatAmount(event.amount, event.ledger.scale)} ${event.ledger.currency}`;
  const route = `${event.debitAccount} → ${event.creditAccount}`;
  const head = `transfer ${event.hop} ${event.state.padEnd(8)} on ${event.ledger.name}`;
  if (event.state === 'prepared') {
    const expiry = event.expiryTime
      ? `  (expires in ${((event.expiryTime.getTime() - Date.now()) / 1000).toFixed(1)} s)`
      : '';
    return `${head.padEnd(32)} ${route.padEnd(28)} ${amount.padStart(16)}${expiry}`;
  }
  return event.state === 'rejected' ? `${head.padEnd(32)} ${event.why}` : head;
}

/** Follows the ledgers of a network for the transfers of one payment. */
export class PaymentTracer {
  private readonly clients: LedgerClient[] = [];
  private readonly streams: grpc.ClientReadableStream<SubscribeResponse>[] = [];
  private buffered: Array<{ ledger: ManifestLedger; event: Event }> = [];
  private condition: Buffer | undefined;
  private path: string[] = [];
  private readonly seen: HopEvent[] = [];
  private waiters: Array<() => void> = [];

  constructor(
    private readonly ledgers: ManifestLedger[],
    private readonly identity: ClientIdentity,
    private readonly onHop: (event: HopEvent) => void,
  ) {}

  /** Opens the streams; resolves once every ledger's subscription is live. */
  async start(timeoutMs = 10_000): Promise<void> {
    await Promise.all(
      this.ledgers.map(
        (ledger) =>
          new Promise<void>((resolve, reject) => {
            const client = createLedgerClient(ledger.address, this.identity);
            this.clients.push(client);
            const stream = client.subscribe({
              accounts: [],
              eventTypes: [
                EventType.EVENT_TYPE_TRANSFER_PREPARED,
                EventType.EVENT_TYPE_TRANSFER_EXECUTED,
                EventType.EVENT_TYPE_TRANSFER_REJECTED,
              ],
            });
            this.streams.push(stream);
            const timer = setTimeout(() => reject(new Error(`no notification stream from ${ledger.name}`)), timeoutMs);
            stream.on('data', (response: SubscribeResponse) => {
              if (response.kind?.$case === 'subscribed') {
                clearTimeout(timer);
                resolve();
              } else if (response.kind?.$case === 'event') {
                this.receive(ledger, response.kind.value);
              }
            });
            stream.on('error', (error) => {
              clearTimeout(timer);
              reject(error);
            });
          }),
      ),
    );
  }

  /**
   * Reports from now on the transfers carrying `condition`; `path` names the ledgers in payment
   * order (hop 1 first).
   */
  follow(condition: Buffer, path: string[]): void {
    if (this.condition) return;
    this.condition = condition;
    this.path = path;
    const buffered = this.buffered;
    this.buffered = [];
    for (const { ledger, event } of buffered) this.receive(ledger, event);
  }

  /** The hops reported so far. */
  get hops(): readonly HopEvent[] {
    return this.seen;
  }

  /** Resolves once every ledger on the path has a final transfer, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.allFinal() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  stop(): void {
    for (const stream of this.streams) stream.cancel();
    for (const client of this.clients) client.close();
  }

  private allFinal(): boolean {
    const prepared = new Set(this.seen.filter((hop) => hop.state === 'prepared').map((hop) => hop.transferId));
    const final = new Set(this.seen.filter((hop) => hop.state !== 'prepared').map((hop) => hop.transferId));
    return prepared.size > 0 && [...prepared].every((id) => final.has(id));
  }

  private receive(ledger: ManifestLedger, event: Event): void {
    if (!this.condition) {
      if (this.buffered.length < bufferedEventsMax) this.buffered.push({ ledger, event });
      return;
    }
    const transfer = event.transfer;
    if (!transfer || !this.condition.equals(Buffer.from(transfer.executionCondition))) return;
    const state =
      event.type === EventType.EVENT_TYPE_TRANSFER_PREPARED
        ? 'prepared'
        : event.type === EventType.EVENT_TYPE_TRANSFER_EXECUTED
          ? 'executed'
          : 'rejected';
    const why =
      state !== 'rejected'
        ? ''
        : transfer.rejectionReason === RejectionReason.REJECTION_REASON_EXPIRED
          ? 'expired (the hold returned)'
          : `${transfer.ilpError?.code ?? ''} ${transfer.ilpError?.name ?? ''}: ${transfer.ilpError?.message ?? ''}`.trim();
    const hop: HopEvent = {
      hop: this.path.indexOf(ledger.name) + 1 || this.ledgers.indexOf(ledger) + 1,
      ledger,
      state,
      transferId: transfer.id,
      debitAccount: transfer.debitAccount,
      creditAccount: transfer.creditAccount,
      amount: transfer.amount,
      expiryTime: transfer.expiryTime,
      why,
    };
    this.seen.push(hop);
    this.onHop(hop);
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
