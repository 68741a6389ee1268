/**
 * A payment's life across the network's ledgers, from what the ledgers recorded: given a
 * transfer id (on any ledger) or a payment id (at any DFSP's SPSP service), find the transfers
 * that share its condition, in payment order, with their states and timings. A payment that
 * failed before its transfer existed has no transfers: its trace is the payment and its failure.
 */
import { TransferState, type Transfer } from '../gen/interclear/ledger/v1/ledger';
import type { Payment } from '../gen/interclear/spsp/v1/spsp';
import { formatAmount } from '../ilp';
import { createLedgerClient } from '../ledger/client';
import type { ClientIdentity } from '../platform/client';
import { createPaymentClient } from '../spsp/client';
import { paymentStateFromWire } from '../spsp/wire';
import type { ManifestLedger, NetworkManifest } from './manifest';
import { isUuid } from '../platform/ids';

/** One transfer of a traced payment. */
export interface TracedTransfer {
  ledger: ManifestLedger;
  transfer: Transfer;
}

/** A payment as the SPSP service of its sender's DFSP recorded it. */
export interface TracedPaymentRecord {
  dfsp: string;
  record: Payment;
}

/**
 * A traced payment: its transfers in payment order and, when the id named a payment, the
 * payment as recorded (a failed payment may have no transfer at all).
 */
export interface PaymentTrace {
  hops: TracedTransfer[];
  payment?: TracedPaymentRecord;
}

/** Longest a transfer may be held anywhere: bounds the search window around the first one. */
const searchWindowMs = 10 * 60_000;

async function findTransfer(manifest: NetworkManifest, identity: ClientIdentity, transferId: string) {
  for (const ledger of manifest.ledgers) {
    const client = createLedgerClient(ledger.address, identity);
    try {
      const { transfer } = await client.getTransfer({ transferId }, { timeoutMs: 5_000 });
      if (transfer) return { ledger, transfer };
    } catch (error) {
      if ((error as { code?: number }).code !== 5) throw error;
    } finally {
      client.close();
    }
  }
  return undefined;
}

async function findPayment(
  manifest: NetworkManifest,
  identity: ClientIdentity,
  paymentId: string,
): Promise<TracedPaymentRecord | undefined> {
  for (const dfsp of manifest.dfsps) {
    const client = createPaymentClient(dfsp.spsp, identity);
    try {
      const { payment } = await client.getPayment({ paymentId }, { timeoutMs: 5_000 });
      if (payment) return { dfsp: dfsp.name, record: payment };
    } catch (error) {
      if ((error as { code?: number }).code !== 5) throw error;
    } finally {
      client.close();
    }
  }
  return undefined;
}

/**
 * The transfers of the payment that `id` (a transfer or payment id) belongs to, ordered by the
 * time they were prepared: the payment's hops; with the payment itself when `id` names one.
 * Throws when nothing has that id.
 */
export async function tracePayment(
  manifest: NetworkManifest,
  identity: ClientIdentity,
  id: string,
): Promise<PaymentTrace> {
  if (!isUuid(id)) throw new Error(`"${id}" is not a transfer or payment id (a UUID)`);
  let found = await findTransfer(manifest, identity, id);
  let payment: TracedPaymentRecord | undefined;
  if (!found) {
    payment = await findPayment(manifest, identity, id);
    if (payment?.record.transferId) found = await findTransfer(manifest, identity, payment.record.transferId);
  }
  // A payment whose transfer no ledger holds (it failed before, or the prepare was refused) is
  // all there is to show.
  if (!found && payment) return { hops: [], payment };
  if (!found) throw new Error(`no transfer or payment ${id} on this network's ledgers and SPSP services`);
  const condition = found.transfer.executionCondition;
  if (condition.length === 0) return { hops: [found], payment };
  const preparedAt = found.transfer.prepareTime?.getTime() ?? Date.now();
  const hops: TracedTransfer[] = [];
  for (const ledger of manifest.ledgers) {
    const client = createLedgerClient(ledger.address, identity);
    try {
      let pageToken = '';
      do {
        const page = await client.listTransfers(
          {
            account: '',
            state: TransferState.TRANSFER_STATE_UNSPECIFIED,
            executionCondition: condition,
            startTime: new Date(preparedAt - searchWindowMs),
            endTime: new Date(preparedAt + searchWindowMs),
            pageSize: 100,
            pageToken,
          },
          { timeoutMs: 5_000 },
        );
        for (const transfer of page.transfers) hops.push({ ledger, transfer });
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
    } finally {
      client.close();
    }
  }
  hops.sort(
    (left, right) => (left.transfer.prepareTime?.getTime() ?? 0) - (right.transfer.prepareTime?.getTime() ?? 0),
  );
  return { hops, payment };
}

const stateNames: Record<number, string> = {
  [TransferState.TRANSFER_STATE_PREPARED]: 'prepared',
  [TransferState.TRANSFER_STATE_EXECUTED]: 'executed',
  [TransferState.TRANSFER_STATE_REJECTED]: 'rejected',
};

/** Lines describing a payment as recorded: who paid whom, its state and, when it failed, why. */
function describePaymentRecord({ dfsp, record }: TracedPaymentRecord): string[] {
  const state = paymentStateFromWire(record.state) ?? `state ${record.state}`;
  const amount =
    record.sourceAmount > 0n
      ? `, ${formatAmount(record.sourceAmount, record.sourceScale)} ${record.sourceCurrencyCode}`
      : '';
  const lines = [`payment ${record.id} at ${dfsp}: ${record.senderAccount} → ${record.receiver}${amount}, ${state}`];
  if (record.failure) {
    lines.push(
      `failure: ${record.failure.reason}${record.failure.ilpCode ? ` (ILP ${record.failure.ilpCode})` : ''}: ${record.failure.message}`,
    );
  }
  return lines;
}

/**
 * Lines describing a traced payment for people: the payment when the trace has it, then each
 * hop, its state and when things happened.
 */
export function describeTrace({ hops, payment: record }: PaymentTrace): string[] {
  const payment = record ? describePaymentRecord(record) : [];
  if (hops.length === 0) {
    if (!record) return ['no transfers'];
    const failed = paymentStateFromWire(record.record.state) === 'failed';
    return [...payment, failed ? 'no transfer on any ledger: no money moved' : 'no transfer on any ledger yet'];
  }
  const origin = hops[0].transfer.prepareTime?.getTime() ?? 0;
  const at = (time: Date | undefined) => (time ? `+${time.getTime() - origin} ms` : '');
  const lines = [
    ...payment,
    `condition ${Buffer.from(hops[0].transfer.executionCondition).toString('hex')}`,
    `prepared ${hops[0].transfer.prepareTime?.toISOString()}`,
  ];
  hops.forEach(({ ledger, transfer }, index) => {
    const state = stateNames[transfer.state] ?? 'unknown';
    const amount = `${formatAmount(transfer.amount, ledger.scale)} ${ledger.currency}`;
    const finish = transfer.executeTime ?? transfer.rejectTime;
    const why =
      transfer.state === TransferState.TRANSFER_STATE_REJECTED
        ? transfer.ilpError?.code
          ? ` (${transfer.ilpError.code} ${transfer.ilpError.name}, triggered by ${transfer.ilpError.triggeredBy})`
          : ' (expired)'
        : '';
    lines.push(
      `${index + 1}. ${ledger.name.padEnd(8)} ${`${transfer.debitAccount} → ${transfer.creditAccount}`.padEnd(28)} ` +
        `${amount.padStart(16)}  ${state}${why}  prepared ${at(transfer.prepareTime)}` +
        (finish ? `, ${state} ${at(finish)}` : '') +
        `  transfer ${transfer.id}`,
    );
  });
  return lines;
}
