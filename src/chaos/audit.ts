/**
 * After the faults: waiting for the network to come to rest, and checking that nothing was lost.
 *
 * The audit reads each ledger's and connector's database directly, as an auditor would, and asks
 * the SPSP services and connectors what they report over gRPC. It checks, on every ledger and
 * every payment:
 *
 * - every payment is final (executed, rejected, expired, or failed before any money was held),
 *   and what Pay answered is what the SPSP service recorded;
 * - no transfer is left prepared, and no ledger has two transfers of one payment (a duplicate
 *   forward, or one executed twice);
 * - conservation: sum(balance + held) = net deposits, and held = sum of prepared transfers;
 * - every executed transfer and payment carries a fulfillment whose SHA-256 is its condition;
 * - a sender is charged only if the receiver was paid, and the last hop pays the receiver
 *   exactly the packet's amount;
 * - a connector that paid out without being paid (it lost money) reported it — its payment
 *   marked lost and the "connector lost money" error logged — and a fault explains it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type pg from 'pg';
import { createConnectorClient } from '../connector/client';
import { PaymentState, type Payment } from '../gen/interclear/spsp/v1/spsp';
import { deserializeIlpPayment } from '../ilp';
import type { RunningNetwork } from '../network/network';
import type { ClientIdentity } from '../platform/client';
import { createPool } from '../platform/database';
import { decodeGrpcError } from '../platform/errors';
import { createPaymentClient } from '../spsp/client';
import type { FaultRecord } from './faults';
import { isFinalState, type SentPayment } from './traffic';

/** The kinds of invariant violation, named as facts. */
export type ViolationKind =
  | 'PAYMENT_NOT_FINAL'
  | 'PAYMENT_RECORD_MISMATCH'
  | 'TRANSFER_LEFT_PREPARED'
  | 'DUPLICATE_TRANSFER'
  | 'CONSERVATION_BROKEN'
  | 'INVALID_FULFILLMENT'
  | 'SENDER_CHARGED_RECEIVER_UNPAID'
  | 'RECEIVER_OVERPAID'
  | 'CONNECTOR_PAID_WITHOUT_PAYING'
  | 'UNREPORTED_LOSS'
  | 'UNEXPLAINED_LOSS'
  | 'CONNECTOR_PAYMENT_NOT_FINAL'
  | 'UNEXPECTED_ERROR'
  | 'PROCESS_EXITED'
  | 'SERVICE_NOT_RECOVERED'
  | 'AUDIT_FAILED';

/** One broken invariant, with what shows it. */
export interface Violation {
  kind: ViolationKind;
  message: string;
}

/** Money a connector lost because a fault kept it from passing a fulfillment back in time. */
export interface ReportedLoss {
  connector: string;
  /** The ledger where it was not paid, and the amount, in that ledger's minor units. */
  ledger: string;
  amount: bigint;
  incomingTransferId: string;
  outgoingTransferId: string;
  /** The fault that explains it. */
  fault: string;
}

/** The figures of the audit. */
export interface AuditResult {
  violations: Violation[];
  losses: ReportedLoss[];
  /** Final states of the payments sent, as the SPSP services recorded them. */
  payments: {
    executed: number;
    rejected: number;
    expired: number;
    failed: number;
    notRecorded: number;
    /** Why payments did not execute: ILP error codes of rejections, failure reasons of failures. */
    reasons: Record<string, number>;
  };
  /** Per ledger: transfers by state. */
  ledgers: Record<string, { executed: number; rejected: number; prepared: number }>;
}

/** A transfer row, as the audit reads it. */
interface TransferRow {
  id: string;
  debit_account: string;
  credit_account: string;
  amount: bigint;
  execution_condition: Buffer | null;
  state: 'prepared' | 'executed' | 'rejected';
  fulfillment: Buffer | null;
  ilp_packet: Buffer;
  expires_at: Date | null;
  executed_at: Date | null;
}

/** A connector's account on a ledger, from its configuration. */
interface ConnectorAccount {
  connector: string;
  ledger: string;
  account: string;
}

/** Read-only access to the network's databases, one small pool per service. */
export class NetworkDatabases {
  private readonly pools = new Map<string, pg.Pool>();

  constructor(private readonly network: RunningNetwork) {}

  /** Runs `sql` on the database of `service`. */
  async query<Row extends pg.QueryResultRow>(service: string, sql: string, values: unknown[] = []): Promise<Row[]> {
    let pool = this.pools.get(service);
    if (!pool) {
      pool = createPool(this.network.databaseUrl(service), { size: 1, applicationName: 'interclear-chaos' });
      this.pools.set(service, pool);
    }
    return (await pool.query<Row>(sql, values)).rows;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.end().catch(() => undefined)));
    this.pools.clear();
  }
}

/** What is still moving: open transfers, connector payments and SPSP payments, by service. */
export async function openWork(network: RunningNetwork, databases: NetworkDatabases): Promise<Record<string, number>> {
  const open: Record<string, number> = {};
  for (const service of network.plan.services) {
    const sql =
      service.kind === 'ledger'
        ? "select count(*) as count from transfers where state = 'prepared'"
        : service.kind === 'connector'
          ? "select count(*) as count from connector_payments where state in ('forwarding', 'prepared', 'fulfilling', 'rejecting')"
          : "select count(*) as count from spsp_payments where state in ('pending', 'prepared')";
    const [row] = await databases.query<{ count: bigint }>(service.name, sql);
    open[service.name] = Number(row.count);
  }
  return open;
}

/**
 * Waits until nothing is moving (no prepared transfer, no open connector or SPSP payment), or
 * until `deadline` (epoch milliseconds). Resolves with what was still open then ({} when at
 * rest). Polls: the state is spread over seven processes and databases, with no one event that
 * says "at rest".
 */
export async function waitForRest(
  network: RunningNetwork,
  databases: NetworkDatabases,
  deadline: number,
  options: { signal?: AbortSignal; onWaiting?: (open: Record<string, number>) => void } = {},
): Promise<Record<string, number>> {
  let open: Record<string, number> = {};
  let reportedAt = Date.now();
  for (;;) {
    try {
      open = Object.fromEntries(Object.entries(await openWork(network, databases)).filter(([, count]) => count > 0));
      if (Object.keys(open).length === 0) return open;
    } catch (error) {
      open = { [`(database unreadable: ${(error as Error).message})`]: 1 };
    }
    if (Date.now() >= deadline || options.signal?.aborted) return open;
    if (Date.now() - reportedAt >= 5_000) {
      reportedAt = Date.now();
      options.onWaiting?.(open);
    }
    await delay(Math.min(500, Math.max(0, deadline - Date.now())));
  }
}

/** How long after a fault is healed its effects may last: the clients' reconnection backoff. */
const reconnectionSlackMs = 2_000;

const hex = (buffer: Buffer | Uint8Array | null | undefined) => (buffer ? Buffer.from(buffer).toString('hex') : '');
const sha256 = (buffer: Uint8Array) => createHash('sha256').update(buffer).digest();

/** The connectors' accounts, from their configurations (ledger names, not prefixes). */
function connectorAccounts(network: RunningNetwork): ConnectorAccount[] {
  const ledgerByAddress = new Map(
    network.plan.services.filter((service) => service.kind === 'ledger').map((service) => [service.address, service]),
  );
  const accounts: ConnectorAccount[] = [];
  for (const service of network.plan.services) {
    if (service.kind !== 'connector') continue;
    const content = service.config?.content as { ledgers?: Array<{ address: string; account: string }> };
    for (const ledger of content.ledgers ?? []) {
      const ledgerService = ledgerByAddress.get(ledger.address);
      if (ledgerService)
        accounts.push({ connector: service.name, ledger: ledgerService.name, account: ledger.account });
    }
  }
  return accounts;
}

/** The lines of a JSON log file that parse (the process may have been killed mid-line). */
function logRecords(file: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const records: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      records.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut short by SIGKILL.
    }
  }
  return records;
}

/** The final record of each sent payment, by GetPayment on its SPSP service. */
async function recordedPayments(
  payments: SentPayment[],
  identity: ClientIdentity,
): Promise<Map<string, Payment | 'not-found' | Error>> {
  const records = new Map<string, Payment | 'not-found' | Error>();
  const clients = new Map<string, ReturnType<typeof createPaymentClient>>();
  try {
    for (const payment of payments) {
      let client = clients.get(payment.order.spsp);
      if (!client) clients.set(payment.order.spsp, (client = createPaymentClient(payment.order.spsp, identity)));
      try {
        const response = await client.getPayment({ paymentId: payment.id }, { timeoutMs: 5_000 });
        records.set(payment.id, response.payment!);
      } catch (error) {
        const decoded = decodeGrpcError(error as grpc.ServiceError);
        records.set(
          payment.id,
          decoded.code === grpc.status.NOT_FOUND && decoded.reason === 'PAYMENT_NOT_FOUND'
            ? 'not-found'
            : new Error(`GetPayment ${payment.id}: ${grpc.status[decoded.code]} ${decoded.message}`),
        );
      }
    }
  } finally {
    for (const client of clients.values()) client.close();
  }
  return records;
}

/** Checks every invariant; see the file's comment. */
export async function auditNetwork(input: {
  network: RunningNetwork;
  databases: NetworkDatabases;
  identity: ClientIdentity;
  payments: SentPayment[];
  faults: FaultRecord[];
}): Promise<AuditResult> {
  const { network, databases, identity, payments, faults } = input;
  const violations: Violation[] = [];
  const losses: ReportedLoss[] = [];
  const violate = (kind: ViolationKind, message: string) => violations.push({ kind, message });
  const ledgers: AuditResult['ledgers'] = {};

  // The books of every ledger.
  const transfers = new Map<string, TransferRow[]>();
  const ledgerServices = network.plan.services.filter((service) => service.kind === 'ledger');
  for (const ledger of ledgerServices) {
    const rows = await databases.query<TransferRow>(
      ledger.name,
      `select id, debit_account, credit_account, amount, execution_condition, state, fulfillment, ilp_packet,
              expires_at, executed_at
         from transfers`,
    );
    transfers.set(ledger.name, rows);
    ledgers[ledger.name] = {
      executed: rows.filter((row) => row.state === 'executed').length,
      rejected: rows.filter((row) => row.state === 'rejected').length,
      prepared: rows.filter((row) => row.state === 'prepared').length,
    };
    const [book] = await databases.query<{ total: bigint; held: bigint; net: bigint }>(
      ledger.name,
      `select (select coalesce(sum(balance + held_amount), 0) from accounts) as total,
              (select coalesce(sum(held_amount), 0) from accounts) as held,
              (select coalesce(sum(case kind when 'deposit' then amount else -amount end), 0) from movements) as net`,
    );
    const prepared = rows.filter((row) => row.state === 'prepared');
    const preparedAmount = prepared.reduce((sum, row) => sum + row.amount, 0n);
    if (book.total !== book.net) {
      violate(
        'CONSERVATION_BROKEN',
        `${ledger.name}: balances plus holds are ${book.total}, net deposits are ${book.net} (difference ${book.total - book.net})`,
      );
    }
    if (book.held !== preparedAmount) {
      violate(
        'CONSERVATION_BROKEN',
        `${ledger.name}: accounts hold ${book.held}, prepared transfers add up to ${preparedAmount}`,
      );
    }
    for (const row of prepared) {
      violate('TRANSFER_LEFT_PREPARED', `${ledger.name}: transfer ${row.id} is still prepared after the run`);
    }
    const byCondition = new Map<string, TransferRow[]>();
    for (const row of rows) {
      if (row.state === 'executed' && row.execution_condition) {
        if (!row.fulfillment || !sha256(row.fulfillment).equals(row.execution_condition)) {
          violate(
            'INVALID_FULFILLMENT',
            `${ledger.name}: executed transfer ${row.id} has no fulfillment of its condition`,
          );
        }
      }
      if (!row.execution_condition) continue;
      const key = hex(row.execution_condition);
      byCondition.set(key, [...(byCondition.get(key) ?? []), row]);
    }
    for (const [condition, group] of byCondition) {
      if (group.length > 1) {
        violate(
          'DUPLICATE_TRANSFER',
          `${ledger.name}: ${group.length} transfers under condition ${condition.slice(0, 16)}… (${group
            .map((row) => `${row.id} ${row.state}`)
            .join(', ')}): one payment, one transfer per ledger`,
        );
      }
    }
  }

  // Each payment's path, by condition: which ledger has which transfer.
  const paths = new Map<string, Array<{ ledger: string; transfer: TransferRow }>>();
  for (const [ledger, rows] of transfers) {
    for (const transfer of rows) {
      if (!transfer.execution_condition) continue;
      const key = hex(transfer.execution_condition);
      paths.set(key, [...(paths.get(key) ?? []), { ledger, transfer }]);
    }
  }
  const accounts = connectorAccounts(network);
  const isConnectorAccount = (ledger: string, account: string) =>
    accounts.some((entry) => entry.ledger === ledger && entry.account === account);

  // Connectors: paid out only when paid, or the loss was reported and a fault explains it.
  const connectorNames = [...new Set(accounts.map((entry) => entry.connector))];
  const lostRows = new Map<string, Set<string>>();
  const lossLogs = new Map<string, Set<string>>();
  for (const connector of connectorNames) {
    const rows = await databases.query<{ id: string; state: string }>(
      connector,
      'select id, state from connector_payments',
    );
    lostRows.set(connector, new Set(rows.filter((row) => row.state === 'lost').map((row) => row.id)));
    for (const row of rows) {
      if (['forwarding', 'prepared', 'fulfilling', 'rejecting'].includes(row.state)) {
        violate('CONNECTOR_PAYMENT_NOT_FINAL', `${connector}: payment ${row.id} is still ${row.state}`);
      }
    }
    const logged = new Set<string>();
    for (const record of logRecords(network.service(connector).logFile)) {
      if (typeof record.msg === 'string' && record.msg.startsWith('connector lost money')) {
        logged.add(String(record.outgoingTransferId));
      }
    }
    lossLogs.set(connector, logged);
  }

  for (const [condition, path] of paths) {
    const label = `payment under condition ${condition.slice(0, 16)}…`;
    for (const connector of connectorNames) {
      const own = accounts.filter((entry) => entry.connector === connector);
      const incoming = path.find((hop) =>
        own.some((entry) => entry.ledger === hop.ledger && entry.account === hop.transfer.credit_account),
      );
      const outgoing = path.find((hop) =>
        own.some((entry) => entry.ledger === hop.ledger && entry.account === hop.transfer.debit_account),
      );
      if (!outgoing) continue;
      if (!incoming) {
        violate('CONNECTOR_PAID_WITHOUT_PAYING', `${connector}: ${label}: an outgoing transfer with no incoming one`);
        continue;
      }
      const paidOut = outgoing.transfer.state === 'executed';
      const paidIn = incoming.transfer.state === 'executed';
      if (paidIn && !paidOut) {
        violate(
          'CONNECTOR_PAID_WITHOUT_PAYING',
          `${connector}: ${label}: incoming transfer ${incoming.transfer.id} executed, outgoing ${outgoing.transfer.id} did not`,
        );
      }
      if (paidOut && !paidIn) {
        const reported =
          lostRows.get(connector)?.has(outgoing.transfer.id) && lossLogs.get(connector)?.has(outgoing.transfer.id);
        if (!reported) {
          violate(
            'UNREPORTED_LOSS',
            `${connector}: ${label}: paid ${outgoing.transfer.amount} on ${outgoing.ledger} (transfer ${outgoing.transfer.id}) but was not paid on ${incoming.ledger} (transfer ${incoming.transfer.id} ${incoming.transfer.state}), and did not report it`,
          );
        }
        // The pass-back had to happen between these two times; a fault explains the loss if it
        // was under way then (its effects outlast its healing by the clients' reconnection
        // backoff, at most 2 s). The latest such fault is named.
        const from = outgoing.transfer.executed_at?.getTime() ?? 0;
        const until = incoming.transfer.expires_at?.getTime() ?? Number.POSITIVE_INFINITY;
        const cause = faults
          .filter((record) => record.startedAt <= until && record.healedAt + reconnectionSlackMs >= from)
          .at(-1);
        if (!cause) {
          violate(
            'UNEXPLAINED_LOSS',
            `${connector}: ${label}: lost ${incoming.transfer.amount} on ${incoming.ledger} with no fault between the outgoing execution and the incoming expiry`,
          );
        } else if (reported) {
          losses.push({
            connector,
            ledger: incoming.ledger,
            amount: incoming.transfer.amount,
            incomingTransferId: incoming.transfer.id,
            outgoingTransferId: outgoing.transfer.id,
            fault: `#${cause.fault.index + 1} ${cause.fault.kind}`,
          });
        }
      }
    }
    // The sender's transfer debits a customer; the receiver's credits one.
    const first = path.find((hop) => !isConnectorAccount(hop.ledger, hop.transfer.debit_account));
    const last = path.find((hop) => !isConnectorAccount(hop.ledger, hop.transfer.credit_account));
    if (first?.transfer.state === 'executed' && last?.transfer.state !== 'executed') {
      violate(
        'SENDER_CHARGED_RECEIVER_UNPAID',
        `${label}: the sender's transfer ${first.transfer.id} executed, the receiver's ${last ? `${last.transfer.id} is ${last.transfer.state}` : 'does not exist'}`,
      );
    }
    if (last && isConnectorAccount(last.ledger, last.transfer.debit_account)) {
      try {
        const packet = deserializeIlpPayment(last.transfer.ilp_packet);
        if (last.transfer.amount > packet.amount) {
          violate(
            'RECEIVER_OVERPAID',
            `${label}: the last hop paid ${last.transfer.amount} on ${last.ledger}, the packet says ${packet.amount}`,
          );
        }
      } catch {
        // A packet that does not parse is refused by the receiver (F01); nothing to compare.
      }
    }
  }

  // What the connectors report about their losses.
  for (const connector of connectorNames) {
    const lost = lostRows.get(connector)?.size ?? 0;
    const address = network.plan.services.find((service) => service.name === connector)!.address;
    const client = createConnectorClient(address, identity);
    try {
      const status = await client.getStatus({}, { timeoutMs: 5_000 });
      const reported = Number(status.passBack?.lostTotal ?? 0n);
      if (reported < lost) {
        violate('UNREPORTED_LOSS', `${connector}: GetStatus reports ${reported} lost pass-backs, its records ${lost}`);
      }
    } catch (error) {
      violate('AUDIT_FAILED', `${connector}: GetStatus failed: ${(error as Error).message}`);
    } finally {
      client.close();
    }
  }

  // Every payment sent: final, recorded as Pay answered, and as its ledger says.
  const figures: AuditResult['payments'] = {
    executed: 0,
    rejected: 0,
    expired: 0,
    failed: 0,
    notRecorded: 0,
    reasons: {},
  };
  const countReason = (reason: string) => (figures.reasons[reason] = (figures.reasons[reason] ?? 0) + 1);
  const records = await recordedPayments(payments, identity);
  const senderLedgerOf = (spsp: string) => {
    const dfsp = network.manifest.dfsps.find((candidate) => candidate.spsp === spsp);
    return dfsp ? `${dfsp.ledger}-ledger` : '';
  };
  for (const sent of payments) {
    for (const failure of sent.unexpected) {
      violate(
        'UNEXPECTED_ERROR',
        `Pay ${sent.id} answered ${grpc.status[failure.code]} (${failure.reason}): ${failure.message}`,
      );
    }
    const record = records.get(sent.id);
    if (record instanceof Error) {
      violate('AUDIT_FAILED', record.message);
      continue;
    }
    const answered = sent.answer?.kind === 'payment' ? sent.answer.payment : undefined;
    if (record === 'not-found' || record === undefined) {
      figures.notRecorded += 1;
      if (answered) violate('PAYMENT_RECORD_MISMATCH', `payment ${sent.id}: Pay answered it, GetPayment finds none`);
      continue;
    }
    if (!isFinalState(record.state)) {
      violate('PAYMENT_NOT_FINAL', `payment ${sent.id} is still ${PaymentState[record.state]} after the run`);
      continue;
    }
    if (answered && isFinalState(answered.state) && answered.state !== record.state) {
      violate(
        'PAYMENT_RECORD_MISMATCH',
        `payment ${sent.id}: Pay answered ${PaymentState[answered.state]}, the record says ${PaymentState[record.state]}`,
      );
    }
    const ledgerTransfer = record.transferId
      ? transfers.get(senderLedgerOf(sent.order.spsp))?.find((row) => row.id === record.transferId)
      : undefined;
    switch (record.state) {
      case PaymentState.PAYMENT_STATE_EXECUTED:
        figures.executed += 1;
        if (!sha256(record.fulfillment).equals(Buffer.from(record.executionCondition))) {
          violate('INVALID_FULFILLMENT', `payment ${sent.id} is executed without a fulfillment of its condition`);
        }
        if (ledgerTransfer?.state !== 'executed') {
          violate(
            'PAYMENT_RECORD_MISMATCH',
            `payment ${sent.id} is executed, its transfer ${record.transferId} is ${ledgerTransfer?.state ?? 'missing'}`,
          );
        }
        break;
      case PaymentState.PAYMENT_STATE_REJECTED:
      case PaymentState.PAYMENT_STATE_EXPIRED:
        if (record.state === PaymentState.PAYMENT_STATE_REJECTED) figures.rejected += 1;
        else figures.expired += 1;
        countReason(`${record.ilpError?.code ?? 'no ILP error'} ${record.ilpError?.name ?? ''}`.trim());
        if (ledgerTransfer?.state !== 'rejected') {
          violate(
            'PAYMENT_RECORD_MISMATCH',
            `payment ${sent.id} is ${PaymentState[record.state]}, its transfer ${record.transferId} is ${ledgerTransfer?.state ?? 'missing'}`,
          );
        }
        break;
      default:
        figures.failed += 1;
        countReason(record.failure?.reason ?? 'no failure reason');
        // Failed before any money was held: its transfer, if it was sent at all, moved nothing.
        if (ledgerTransfer?.state === 'executed' || ledgerTransfer?.state === 'prepared') {
          violate(
            'PAYMENT_RECORD_MISMATCH',
            `payment ${sent.id} failed (${record.failure?.reason}), but its transfer ${ledgerTransfer.id} is ${ledgerTransfer.state}`,
          );
        }
    }
  }
  return { violations, losses, payments: figures, ledgers };
}
