/**
 * The payments this DFSP's receivers got, as the receiving side recorded them when it decided
 * each incoming transfer (incoming.ts): for the DFSP's own systems (PaymentService), which need
 * the sender's data — an invoice reference — and the outcome, not only a ledger credit.
 */
import { isUuid } from '../platform/ids';
import { decodePageToken, encodePageToken, parseTimeAndId, timeAndIdPosition } from '../platform/page-tokens';
import { SpspError, Violations } from './errors';
import type { IncomingPayment, IncomingPaymentState } from './model';
import { parseReceiverName, receiverNameRule, type ReceiverBook } from './receivers';
import type { SpspStore } from './store';

const defaultPageSize = 100;
const maximumPageSize = 1000;
/**
 * A page ends early past this many bytes of payments, well below gRPC's 4 MiB message limit:
 * a payment's data may be up to 32 KiB (a rejected transfer's packet), so 1,000 of them would
 * not fit in one answer. The next page token says where to go on.
 */
const pageBytesBudget = 2 * 1024 * 1024;

/** Roughly what a payment weighs in an answer: its variable fields and a bound for the rest. */
function weightOf(payment: IncomingPayment): number {
  return (
    512 +
    payment.data.length +
    (payment.destinationAddress?.length ?? 0) +
    (payment.ilpErrorMessage?.length ?? 0) +
    (payment.receiver?.length ?? 0) +
    payment.account.length
  );
}

/** Input of ListIncomingPayments. */
export interface ListIncomingInput {
  /** "name@dfsp" or the receiver's ILP address; empty: every receiver. */
  receiver: string;
  state: IncomingPaymentState | undefined;
  /** 0: the default. */
  pageSize: number;
  pageToken: string;
}

/** An incoming payment with its receiver named as senders name it. */
export interface ReceivedPayment extends IncomingPayment {
  /** "name@dfsp", or null when the credited account is not a receiver. */
  receiverIdentifier: string | null;
}

/** The incoming payments' history. */
export interface ReceivedPayments {
  get(transferId: string): Promise<ReceivedPayment>;
  list(input: ListIncomingInput): Promise<{ payments: ReceivedPayment[]; nextPageToken: string }>;
}

export function createReceivedPayments(dependencies: {
  store: Pick<SpspStore, 'findIncoming' | 'listIncoming'>;
  receivers: ReceiverBook;
}): ReceivedPayments {
  const { store, receivers } = dependencies;
  const named = (payment: IncomingPayment): ReceivedPayment => ({
    ...payment,
    receiverIdentifier: payment.receiver === null ? null : receivers.identifier({ name: payment.receiver }),
  });
  return {
    async get(transferId) {
      const violations = new Violations();
      if (!isUuid(transferId)) violations.add('transfer_id', 'must be a UUID');
      violations.throwIfAny();
      const payment = await store.findIncoming(transferId.toLowerCase());
      if (!payment) {
        throw new SpspError(
          'INCOMING_PAYMENT_NOT_FOUND',
          `no payment was received by transfer ${transferId} (none was decided for it, or not yet)`,
          { metadata: { transfer_id: transferId } },
        );
      }
      return named(payment);
    },

    async list(input) {
      const violations = new Violations();
      let receiver: string | undefined;
      if (input.receiver !== '') {
        const name = parseReceiverName(input.receiver);
        if (name === undefined) violations.add('receiver', receiverNameRule);
        else if (name.kind === 'identifier') {
          // By name, also a receiver no longer configured: its history stays.
          if (name.dfsp === receivers.dfsp) receiver = name.name;
          else violations.add('receiver', `is not a receiver of ${receivers.dfsp}`);
        } else {
          const found = receivers.find(name);
          if (found === undefined) violations.add('receiver', `is not the address of a receiver of ${receivers.dfsp}`);
          else receiver = found.name;
        }
      }
      if (input.pageSize > maximumPageSize) violations.add('page_size', `must be at most ${maximumPageSize}`);
      // A position: the record time and transfer id of the last payment of the page before.
      const position = input.pageToken === '' ? undefined : decodePageToken(input.pageToken, parseTimeAndId);
      const after = position && { receivedAt: position.time, transferId: position.id };
      if (input.pageToken !== '' && position === undefined) {
        violations.add('page_token', 'is not a token returned by this service');
      }
      violations.throwIfAny();
      const limit = input.pageSize === 0 ? defaultPageSize : input.pageSize;
      // One more than the page: whether there is a next page, without a second query.
      const rows = await store.listIncoming({ receiver, state: input.state, after, limit: limit + 1 });
      const payments: ReceivedPayment[] = [];
      let bytes = 0;
      for (const row of rows.slice(0, limit)) {
        bytes += weightOf(row);
        if (payments.length > 0 && bytes > pageBytesBudget) break;
        payments.push(named(row));
      }
      const more = rows.length > payments.length;
      const last = payments[payments.length - 1];
      const nextPageToken = more ? encodePageToken(timeAndIdPosition(last.receivedAt, last.transferId)) : '';
      return { payments, nextPageToken };
    },
  };
}
