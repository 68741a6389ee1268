/**
 * One payment is one trace: every service of the network (both SPSP services, both connectors,
 * all three ledgers) exports its spans to JSON lines (INTERCLEAR_TRACE_DIRECTORY), and the spans
 * of one payment share a trace id, with the hops in payment order. Also what an operator does
 * against the running network: trace a payment, and grpcurl every service over mTLS.
 */
import { execFile } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { createConnectorClient } from '../../src/connector/client';
import { createLedgerClient } from '../../src/ledger/client';
import { createPaymentClient } from '../../src/spsp/client';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SpanRecord } from '../../src/platform/tracing';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { describeTrace, tracePayment } from '../../src/network/trace';
import { PaymentState } from '../../src/gen/interclear/spsp/v1/spsp';
import { startE2eNetwork, type E2eNetwork } from './support';

const traceDirectory = mkdtempSync(path.join(tmpdir(), 'interclear-traces-'));
let net: E2eNetwork;

beforeAll(async () => {
  net = await startE2eNetwork({ environment: { INTERCLEAR_TRACE_DIRECTORY: traceDirectory } });
}, 120_000);

afterAll(async () => {
  await net?.stop();
  rmSync(traceDirectory, { recursive: true, force: true });
});

function readSpans(): SpanRecord[] {
  return readdirSync(traceDirectory)
    .filter((file) => file.endsWith('.jsonl'))
    .flatMap((file) =>
      readFileSync(path.join(traceDirectory, file), 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as SpanRecord),
    );
}

test('a payment is one trace across both SPSP services, both connectors and all three ledgers, hops in order', async () => {
  const paymentId = randomUUID();
  const { payment } = await net.payments['dfsp-a'].pay({
    paymentId,
    senderAccount: 'alice',
    receiver: 'bob@dfsp-b',
    amount: { $case: 'destinationAmount', value: 1000n },
    data: Buffer.alloc(0),
  });
  expect(payment?.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);

  // The Pay span is the root: find its trace, then wait (bounded) for every service's spans.
  const services = ['spsp dfsp-a', 'spsp dfsp-b', 'connector connector-a', 'connector connector-b'];
  const ledgers = ['ledger private.dfsp-a.', 'ledger private.central.', 'ledger private.dfsp-b.'];
  let spans: SpanRecord[] = [];
  let traceId: string | undefined;
  const deadline = Date.now() + 15_000;
  for (;;) {
    spans = readSpans();
    traceId = spans.find((span) => span.name.endsWith('PaymentService/Pay') && span.service === 'spsp dfsp-a')?.traceId;
    const traced = spans.filter((span) => span.traceId === traceId);
    const inTrace = new Set(traced.map((span) => span.service));
    // A span is written when it ends, and a parent ends after its children (a connector's job
    // span after the ledger call it made returns): wait until every parent has been written too.
    const ids = new Set(traced.map((span) => span.spanId));
    const waitingForParents = traced.some((span) => span.parentSpanId !== undefined && !ids.has(span.parentSpanId));
    if (traceId && [...services, ...ledgers].every((service) => inTrace.has(service)) && !waitingForParents) break;
    if (Date.now() > deadline) break; // the assertions below say what is missing

    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  expect(traceId).toBeDefined();
  const trace = spans.filter((span) => span.traceId === traceId);
  expect([...new Set(trace.map((span) => span.service))].sort()).toEqual([...services, ...ledgers].sort());
  const on = (ledger: string, method: string) =>
    trace.find((span) => span.service === ledger && span.name.endsWith(`LedgerService/${method}`));

  // Prepared in order A → central → B; fulfilled in reverse, B → central → A.
  const prepares = ledgers.map((ledger) => on(ledger, 'PrepareTransfer'));
  const fulfils = ledgers.map((ledger) => on(ledger, 'FulfillTransfer'));
  for (const span of [...prepares, ...fulfils]) expect(span).toBeDefined();
  expect(prepares[0]!.startTimeMs).toBeLessThan(prepares[1]!.startTimeMs);
  expect(prepares[1]!.startTimeMs).toBeLessThan(prepares[2]!.startTimeMs);
  expect(fulfils[2]!.startTimeMs).toBeLessThan(fulfils[1]!.startTimeMs);
  expect(fulfils[1]!.startTimeMs).toBeLessThan(fulfils[0]!.startTimeMs);
  expect(prepares[2]!.startTimeMs).toBeLessThan(fulfils[2]!.startTimeMs);

  // Spans carry the domain: which transfer, on which ledger, how much.
  expect(prepares[2]!.attributes['interclear.ledger']).toBe('private.dfsp-b.');
  expect(prepares[2]!.attributes['interclear.amount']).toBe('1000');
  expect(prepares[2]!.attributes['interclear.transfer_id']).toMatch(/^[0-9a-f-]{36}$/);

  // Every span of the trace but the root has its parent in the trace.
  const ids = new Set(trace.map((span) => span.spanId));
  const orphans = trace.filter((span) => span.parentSpanId !== undefined && !ids.has(span.parentSpanId));
  expect(orphans.map((span) => `${span.service}: ${span.name}`)).toEqual([]);
});

test('`interclear trace` finds a payment by payment id or transfer id: its three transfers, in order', async () => {
  const paymentId = randomUUID();
  const { payment } = await net.payments['dfsp-a'].pay({
    paymentId,
    senderAccount: 'alice',
    receiver: 'bob@dfsp-b',
    amount: { $case: 'destinationAmount', value: 700n },
    data: Buffer.alloc(0),
  });
  const identity = await net.network.identityFor(net.network.manifest.adminPrincipal);
  const traced = await tracePayment(net.network.manifest, identity, paymentId);
  const byPayment = traced.hops;
  expect(byPayment.map((hop) => hop.ledger.name)).toEqual(['dfsp-a', 'central', 'dfsp-b']);
  expect(byPayment.every((hop) => hop.transfer.state === TransferState.TRANSFER_STATE_EXECUTED)).toBe(true);
  expect(byPayment[2].transfer.amount).toBe(700n);
  const byTransfer = (await tracePayment(net.network.manifest, identity, byPayment[1].transfer.id)).hops;
  expect(byTransfer.map((hop) => hop.transfer.id)).toEqual(byPayment.map((hop) => hop.transfer.id));
  expect(byPayment[0].transfer.id).toBe(payment?.transferId);
  const lines = describeTrace(traced);
  expect(lines.filter((line) => /^\d\. /.test(line))).toHaveLength(3);
  await expect(tracePayment(net.network.manifest, identity, randomUUID())).rejects.toThrow(/no transfer or payment/);
});

test('grpcurl with the operator certificate lists and calls every service of the network over mTLS', async () => {
  const tls = net.network.manifest.tls!;
  const grpcurl = (args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(
        '/usr/bin/python3',
        [
          path.join(__dirname, '..', 'tools', 'grpcurl.py'),
          '-cacert',
          tls.ca,
          '-cert',
          tls.certificate,
          '-key',
          tls.privateKey,
          ...args,
        ],
        { timeout: 30_000 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${args.join(' ')}: ${stderr}${stdout}`)) : resolve(stdout),
      ),
    );
  const customerOf = (dfsp: string | null) =>
    net.network.manifest.dfsps.find((entry) => entry.name === dfsp)!.customers[0];
  const calls: Record<string, (dfsp: string | null) => [string, string, object]> = {
    ledger: () => ['interclear.ledger.v1.LedgerService', 'GetLedgerInfo', {}],
    connector: () => ['interclear.connector.v1.ConnectorService', 'ListRoutes', {}],
    spsp: (dfsp) => ['interclear.spsp.v1.SpspService', 'Query', { receiver: customerOf(dfsp) }],
  };
  for (const service of net.network.manifest.services) {
    const [name, method, body] = calls[service.kind](service.dfsp);
    expect(await grpcurl([service.address, 'list'])).toContain(name);
    const response = JSON.parse(await grpcurl(['-d', JSON.stringify(body), service.address, `${name}/${method}`]));
    expect(Object.keys(response).length).toBeGreaterThan(0);
  }
});

describe('authorization across the services: method × caller', () => {
  const codeOf = async (call: Promise<unknown>) => {
    try {
      await call;
      return 'OK';
    } catch (error) {
      return grpc.status[(error as grpc.ServiceError).code];
    }
  };
  const dfspA = () => net.network.manifest.dfsps.find((dfsp) => dfsp.name === 'dfsp-a')!;
  const payAs = async (principal: string) => {
    const client = createPaymentClient(dfspA().spsp, await net.network.identityFor(principal));
    try {
      return await codeOf(
        client.pay({
          paymentId: randomUUID(),
          senderAccount: 'alice',
          receiver: 'bob@dfsp-b',
          amount: { $case: 'destinationAmount', value: 10n },
          data: Buffer.alloc(0),
        }),
      );
    } finally {
      client.close();
    }
  };
  const statusAs = async (principal: string) => {
    const client = createConnectorClient(dfspA().connector, await net.network.identityFor(principal));
    try {
      return await codeOf(client.getStatus({}));
    } finally {
      client.close();
    }
  };
  const prepareFromAliceAs = async (principal: string) => {
    const client = createLedgerClient(net.ledger('dfsp-a').address, await net.network.identityFor(principal));
    try {
      return await codeOf(
        client.prepareTransfer({
          transferId: randomUUID(),
          debitAccount: 'alice',
          creditAccount: 'connector-a',
          amount: 1n,
          executionCondition: Buffer.alloc(32, 1),
          expiryTime: new Date(Date.now() + 5_000),
          ilpPacket: Buffer.alloc(0),
          memo: Buffer.alloc(0),
          traceParent: '',
        }),
      );
    } finally {
      client.close();
    }
  };
  const cases: Array<[string, string, string, () => Promise<string>]> = [
    ['PaymentService/Pay', 'admin', 'OK', () => payAs('admin')],
    ['PaymentService/Pay', 'spsp-b (another DFSP)', 'PERMISSION_DENIED', () => payAs('spsp-b')],
    ['PaymentService/Pay', 'connector-a', 'PERMISSION_DENIED', () => payAs('connector-a')],
    ['ConnectorService/GetStatus', 'admin', 'OK', () => statusAs('admin')],
    ['ConnectorService/GetStatus', 'spsp-b', 'PERMISSION_DENIED', () => statusAs('spsp-b')],
    ['LedgerService/PrepareTransfer from alice', 'spsp-a (her DFSP)', 'OK', () => prepareFromAliceAs('spsp-a')],
    [
      'LedgerService/PrepareTransfer from alice',
      'connector-a',
      'PERMISSION_DENIED',
      () => prepareFromAliceAs('connector-a'),
    ],
    ['LedgerService/PrepareTransfer from alice', 'spsp-b', 'PERMISSION_DENIED', () => prepareFromAliceAs('spsp-b')],
    [
      'SpspService/SetupPayment',
      'another-dfsp',
      'OK',
      () =>
        codeOf(
          net.spsp['dfsp-b'].setupPayment({ receiver: 'bob@dfsp-b', destinationAmount: 10n, data: Buffer.alloc(0) }),
        ),
    ],
    [
      'QuotingService/QuoteByDestinationAmount',
      'spsp-a',
      'OK',
      () =>
        codeOf(
          net.quoting['dfsp-a'].quoteByDestinationAmount({
            sourceLedgerPrefix: 'private.dfsp-a.',
            destinationAddress: 'private.dfsp-b.bob',
            destinationAmount: 10n,
          }),
        ),
    ],
  ];
  test.each(cases)('%s by %s → %s', async (_method, _caller, expected, call) => {
    expect(await call()).toBe(expected);
  });
});
