/**
 * The standard network as real processes: three ledgers (DFSP A in USD, the central ledger in
 * EUR at scale 4, DFSP B in EUR) and two connectors, each on its own database, with alice at
 * DFSP A and bob at DFSP B. Bob's behaviour per payment (fulfil, reject, ignore) is chosen by
 * the payment's condition.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import {
  createConnectorClient,
  createQuotingClient,
  type ConnectorClient,
  type QuotingClient,
} from '../../src/connector/client';
import { exampleConnectorConfigs } from '../../src/connector/example';
import {
  EventType,
  type Event,
  type IlpError,
  type SubscribeResponse,
} from '../../src/gen/interclear/ledger/v1/ledger';
import { serializeIlpPayment } from '../../src/ilp';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import { findFreePort } from '../../src/platform/database';
import { createTestDatabase } from '../support/database';
import { spawnInterclear, waitUntil, type ManagedProcess } from '../support/processes';

export const prefixes = { dfspA: 'private.dfsp-a.', central: 'private.central.', dfspB: 'private.dfsp-b.' } as const;
export type LedgerName = keyof typeof prefixes;

/** Bob's answer to a transfer, by its condition. */
export type ReceiverBehaviour = { fulfil: Buffer } | { reject: Partial<IlpError> } | 'ignore';

/** A connector process with its clients and database. */
export interface ConnectorProcess {
  process: ManagedProcess;
  address: string;
  databaseUrl: string;
  status: ConnectorClient;
  quoting: QuotingClient;
}

export interface TestNetwork {
  ledgers: Record<LedgerName, { process: ManagedProcess; address: string; admin: LedgerClient }>;
  connectors: { a: ConnectorProcess; b: ConnectorProcess };
  alice: LedgerClient;
  /** Net deposits per ledger, for the conservation check. */
  deposits: Record<LedgerName, bigint>;
  /** What bob does with the transfer of each condition (hex); default: ignore. */
  receiver: Map<string, ReceiverBehaviour>;
  /** Transfers bob saw prepared, by id. */
  received: Map<string, Event>;
  processes(): ManagedProcess[];
  close(): void;
}

async function ledgerProcess(name: LedgerName, currency: string, scale: number) {
  const database = await createTestDatabase(`ledger_${name}`);
  const address = `127.0.0.1:${await findFreePort()}`;
  const process = spawnInterclear(`ledger-${name}`, [
    'ledger',
    '--listen',
    address,
    '--ilp-prefix',
    prefixes[name],
    '--currency',
    currency,
    '--scale',
    String(scale),
    '--max-hold-time',
    '30s',
    '--database-url',
    database.url,
    '--insecure',
  ]);
  return { process, address, admin: createLedgerClient(address, { principal: 'admin' }) };
}

/** Waits until the ledger answers. */
export async function waitForLedger(ledger: { process: ManagedProcess; admin: LedgerClient }): Promise<void> {
  await waitUntil('the ledger to serve', () => ledger.admin.getLedgerInfo({}, { timeoutMs: 1000 }).then(() => true), {
    processes: [ledger.process],
  });
}

/** Waits until the connector serves with every ledger stream connected. */
export async function waitForConnector(connector: ConnectorProcess): Promise<void> {
  await waitUntil(
    'the connector to connect to its ledgers',
    async () => {
      const status = await connector.status.getStatus({}, { timeoutMs: 1000 });
      return status.ledgers.every((ledger) => ledger.streamConnected) ? true : undefined;
    },
    { processes: [connector.process] },
  );
}

/** Starts the network and funds it: alice 10,000.00 USD, the connectors 10,000 EUR and 1,000.00 EUR. */
export async function startNetwork(): Promise<TestNetwork> {
  const [dfspA, central, dfspB] = await Promise.all([
    ledgerProcess('dfspA', 'USD', 2),
    ledgerProcess('central', 'EUR', 4),
    ledgerProcess('dfspB', 'EUR', 2),
  ]);
  const ledgers = { dfspA, central, dfspB };
  await Promise.all(Object.values(ledgers).map(waitForLedger));

  const deposits: Record<LedgerName, bigint> = { dfspA: 0n, central: 0n, dfspB: 0n };
  const account = async (ledger: LedgerName, name: string, deposit: bigint) => {
    await ledgers[ledger].admin.createAccount({ name, owner: name, minimumBalanceUnlimited: false, disabled: false });
    if (deposit > 0n) {
      await ledgers[ledger].admin.deposit({
        depositId: randomUUID(),
        account: name,
        amount: deposit,
        externalReference: 'test funding',
      });
      deposits[ledger] += deposit;
    }
  };
  await Promise.all([
    account('dfspA', 'alice', 1_000_000n),
    account('dfspA', 'connector-a', 0n),
    account('central', 'connector-a', 100_000_000n),
    account('central', 'connector-b', 0n),
    account('dfspB', 'connector-b', 100_000n),
    account('dfspB', 'bob', 0n),
  ]);

  const [connectorAPort, connectorBPort] = [await findFreePort(), await findFreePort()];
  const endpoints = {
    dfspALedger: dfspA.address,
    centralLedger: central.address,
    dfspBLedger: dfspB.address,
    connectorA: `127.0.0.1:${connectorAPort}`,
    connectorB: `127.0.0.1:${connectorBPort}`,
  };
  const configs = exampleConnectorConfigs(endpoints);
  const directory = mkdtempSync(path.join(tmpdir(), 'interclear-connector-test-'));
  const connectorProcess = async (name: 'a' | 'b'): Promise<ConnectorProcess> => {
    const database = await createTestDatabase(`connector_${name}`);
    const file = path.join(directory, `connector-${name}.json`);
    // Short windows keep the timing tests quick; the holds still leave room for a restart.
    writeFileSync(file, JSON.stringify({ ...configs[name], messageWindow: '500ms', maxHoldTime: '10s' }, null, 2));
    const address = name === 'a' ? endpoints.connectorA : endpoints.connectorB;
    return {
      process: spawnInterclear(`connector-${name}`, [
        'connector',
        '--config',
        file,
        '--database-url',
        database.url,
        '--insecure',
      ]),
      address,
      databaseUrl: database.url,
      // GetStatus is the operator's; quotes are open to any authenticated caller.
      status: createConnectorClient(address, { principal: 'admin' }),
      quoting: createQuotingClient(address, { principal: 'alice' }),
    };
  };
  const connectors = { a: await connectorProcess('a'), b: await connectorProcess('b') };
  await Promise.all([waitForConnector(connectors.a), waitForConnector(connectors.b)]);

  const receiver = new Map<string, ReceiverBehaviour>();
  const received = new Map<string, Event>();
  const bob = createLedgerClient(dfspB.address, { principal: 'bob' });
  const bobStream = followAccount(bob, 'bob', (event) => {
    const transfer = event.transfer;
    if (event.type !== EventType.EVENT_TYPE_TRANSFER_PREPARED || !transfer || transfer.creditAccount !== 'bob') return;
    received.set(transfer.id, event);
    const behaviour = receiver.get(Buffer.from(transfer.executionCondition).toString('hex')) ?? 'ignore';
    if (behaviour === 'ignore') return;
    if ('fulfil' in behaviour) {
      void bob.fulfillTransfer({ transferId: transfer.id, fulfillment: behaviour.fulfil }).catch(() => undefined);
    } else {
      void bob
        .rejectTransfer({
          transferId: transfer.id,
          ilpError: {
            code: 'F99',
            name: 'Application Error',
            message: '',
            triggeredBy: `${prefixes.dfspB}bob`,
            forwardedBy: [],
            data: Buffer.alloc(0),
            ...behaviour.reject,
          },
        })
        .catch(() => undefined);
    }
  });
  const alice = createLedgerClient(dfspA.address, { principal: 'alice' });
  return {
    ledgers,
    connectors,
    alice,
    deposits,
    receiver,
    received,
    processes: () => [
      ...Object.values(ledgers).map((ledger) => ledger.process),
      connectors.a.process,
      connectors.b.process,
    ],
    close() {
      bobStream.cancel();
      for (const client of [bob, alice, ...Object.values(ledgers).map((ledger) => ledger.admin)]) client.close();
      for (const connector of Object.values(connectors)) {
        connector.status.close();
        connector.quoting.close();
      }
    },
  };
}

/**
 * Calls `onEvent` for every event of `account` from the ledger's beginning, until cancelled. A
 * stream that fails (the ledger restarting, a channel still backing off) is reopened after the
 * last event seen.
 */
export function followAccount(
  client: LedgerClient,
  account: string,
  onEvent: (event: Event) => void,
): { cancel(): void } {
  let cancelled = false;
  let lastSequence = 0n;
  let stream: grpc.ClientReadableStream<SubscribeResponse>;
  const open = () => {
    stream = client.subscribe({ accounts: [account], afterSequence: lastSequence });
    stream.on('data', (message: SubscribeResponse) => {
      if (message.kind?.$case !== 'event' || message.kind.value.sequence <= lastSequence) return;
      lastSequence = message.kind.value.sequence;
      onEvent(message.kind.value);
    });
    stream.on('error', () => {
      if (!cancelled) setTimeout(() => !cancelled && open(), 100);
    });
  };
  open();
  return {
    cancel() {
      cancelled = true;
      stream.cancel();
    },
  };
}

/** Resolves with the first event of `account` (from the beginning) that matches `predicate`. */
export function awaitEvent(
  client: LedgerClient,
  account: string,
  predicate: (event: Event) => boolean,
  timeoutMs = 20_000,
): Promise<Event> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`no matching event for ${account} within ${timeoutMs} ms`));
    }, timeoutMs);
    const stream = followAccount(client, account, (event) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      stream.cancel();
      resolve(event);
    });
  });
}

/** The first final event (executed or rejected) of transfer `id` as `account` sees it. */
export function awaitOutcome(client: LedgerClient, account: string, id: string, timeoutMs?: number): Promise<Event> {
  return awaitEvent(
    client,
    account,
    (event) =>
      event.transfer?.id === id &&
      (event.type === EventType.EVENT_TYPE_TRANSFER_EXECUTED || event.type === EventType.EVENT_TYPE_TRANSFER_REJECTED),
    timeoutMs,
  );
}

/** A payment's secret and the condition every transfer carries. */
export function newCondition(): { fulfillment: Buffer; condition: Buffer } {
  const fulfillment = randomBytes(32);
  return { fulfillment, condition: createHash('sha256').update(fulfillment).digest() };
}

/** Alice prepares a transfer to connector A carrying the packet to `destination`. */
export async function prepareFromAlice(
  network: TestNetwork,
  payment: {
    sourceAmount: bigint;
    destination: string;
    destinationAmount: bigint;
    condition: Buffer;
    holdMs: number;
    /** A W3C traceparent to send with the call: the payment's trace. */
    traceParent?: string;
  },
): Promise<string> {
  const id = randomUUID();
  const metadata = new Metadata();
  if (payment.traceParent) metadata.set('traceparent', payment.traceParent);
  await network.alice.prepareTransfer(
    {
      transferId: id,
      debitAccount: 'alice',
      creditAccount: 'connector-a',
      amount: payment.sourceAmount,
      executionCondition: payment.condition,
      expiryTime: new Date(Date.now() + payment.holdMs),
      ilpPacket: serializeIlpPayment({
        account: payment.destination,
        amount: payment.destinationAmount,
        data: Buffer.from('test'),
      }),
      memo: Buffer.alloc(0),
      traceParent: '',
    },
    { metadata },
  );
  return id;
}

/** Balance and held amount of every account of a ledger, and whether the ledger conserves money. */
export async function ledgerBook(
  network: TestNetwork,
  ledger: LedgerName,
): Promise<{ accounts: Record<string, { balance: bigint; held: bigint }>; conserved: boolean }> {
  const { accounts } = await network.ledgers[ledger].admin.listAccounts({ pageSize: 1000, pageToken: '' });
  const book: Record<string, { balance: bigint; held: bigint }> = {};
  let total = 0n;
  for (const account of accounts) {
    book[account.name] = { balance: account.balance, held: account.heldAmount };
    total += account.balance + account.heldAmount;
  }
  return { accounts: book, conserved: total === network.deposits[ledger] };
}

/** Every account of every ledger. */
export async function allBooks(network: TestNetwork) {
  const [dfspA, central, dfspB] = await Promise.all([
    ledgerBook(network, 'dfspA'),
    ledgerBook(network, 'central'),
    ledgerBook(network, 'dfspB'),
  ]);
  return { dfspA, central, dfspB };
}
