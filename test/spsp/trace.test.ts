/**
 * `interclear trace <payment-id>` over a real ledger and SPSP service: a payment that failed
 * before any transfer was held is shown with its failure (GetPayment knows it), not reported as
 * unknown; a payment with transfers is shown with them.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PaymentState, type PayRequest } from '../../src/gen/interclear/spsp/v1/spsp';
import { manifestPath, writeManifest, type NetworkManifest } from '../../src/network/manifest';
import { describeTrace, tracePayment } from '../../src/network/trace';
import { directQuote, failure, startSpspPair, type SpspPair } from './support';

const binary = path.join(__dirname, '..', '..', 'bin', 'interclear.js');
const directory = mkdtempSync(path.join(tmpdir(), 'interclear-trace-'));
let pair: SpspPair;
let manifest: NetworkManifest;

beforeAll(async () => {
  pair = await startSpspPair();
  manifest = {
    version: 1,
    startTime: new Date().toISOString(),
    dataDir: directory,
    adminPrincipal: 'admin',
    insecure: true,
    tls: null,
    database: { embedded: false, url: '' },
    services: [],
    ledgers: [
      {
        name: 'local',
        dfsp: null,
        address: pair.ledger.ledger.address,
        prefix: 'private.local.',
        currency: 'USD',
        scale: 2,
        accounts: [],
      },
    ],
    dfsps: [
      {
        name: 'dfsp-a',
        ledger: 'local',
        spsp: pair.spspA.address,
        connector: '127.0.0.1:1',
        spspPrincipal: 'spsp-a',
        customers: ['alice@dfsp-a'],
      },
    ],
  };
  writeManifest(manifestPath(directory), manifest);
}, 60_000);

afterAll(async () => {
  await pair.stop();
  rmSync(directory, { recursive: true, force: true });
});

const identity = { principal: 'admin' };

function payRequest(overrides: Partial<PayRequest> = {}): PayRequest {
  return {
    paymentId: randomUUID(),
    senderAccount: 'alice',
    receiver: 'bob@dfsp-b',
    amount: { $case: 'destinationAmount', value: 250n },
    data: Buffer.alloc(0),
    ...overrides,
  };
}

/** Runs `interclear trace <id>` on the test network (asynchronously: the services run in this process). */
function traceCommand(id: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [binary, 'trace', id, '--manifest', manifestPath(directory)],
      { timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

test.each([
  [
    'a DFSP missing from the directory (no transfer was ever sent)',
    { receiver: 'bob@dfsp-x' },
    'UNKNOWN_DFSP',
    'no DFSP in the directory serves "bob@dfsp-x"',
  ],
  [
    'insufficient funds (the ledger refused the transfer)',
    { amount: { $case: 'destinationAmount', value: 10_000_000n } },
    'INSUFFICIENT_FUNDS',
    '',
  ],
] as Array<[string, Partial<PayRequest>, string, string]>)(
  'a payment failed for %s is traced to its failure',
  async (_case, overrides, reason, message) => {
    pair.setQuote(directQuote('bob'));
    const request = payRequest(overrides);
    expect(await failure(pair.payments.pay(request))).toMatchObject({ reason });

    const trace = await tracePayment(manifest, identity, request.paymentId);
    expect(trace.hops).toHaveLength(0);
    expect(trace.payment).toMatchObject({
      dfsp: 'dfsp-a',
      record: { id: request.paymentId, state: PaymentState.PAYMENT_STATE_FAILED, failure: { reason } },
    });
    const lines = describeTrace(trace);
    expect(lines[0]).toMatch(
      new RegExp(`^payment ${request.paymentId} at dfsp-a: alice → ${request.receiver}(, .+)?, failed$`),
    );
    expect(lines[1]).toContain(`failure: ${reason}: ${message}`);
    expect(lines[2]).toBe('no transfer on any ledger: no money moved');
  },
);

test('`interclear trace` of a failed payment prints the payment and its failure', async () => {
  pair.setQuote(directQuote('bob'));
  const request = payRequest({ receiver: 'bob@dfsp-x' });
  await failure(pair.payments.pay(request));
  const { code, stdout, stderr } = await traceCommand(request.paymentId);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toContain(`payment ${request.paymentId} at dfsp-a: alice → bob@dfsp-x, failed`);
  expect(stdout).toContain('failure: UNKNOWN_DFSP: no DFSP in the directory serves "bob@dfsp-x"');
});

test('an executed payment is traced to its transfers, with the payment first', async () => {
  pair.setQuote(directQuote('bob'));
  const request = payRequest();
  const { payment } = await pair.payments.pay(request);
  expect(payment?.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);

  const trace = await tracePayment(manifest, identity, request.paymentId);
  expect(trace.hops.map((hop) => hop.transfer.id)).toEqual([payment!.transferId]);
  const lines = describeTrace(trace);
  expect(lines[0]).toBe(`payment ${request.paymentId} at dfsp-a: alice → bob@dfsp-b, 2.50 USD, executed`);
  expect(lines.filter((line) => /^\d\. /.test(line))).toHaveLength(1);
});

test('an id that names nothing is still an error', async () => {
  await expect(tracePayment(manifest, identity, randomUUID())).rejects.toThrow(/no transfer or payment/);
});
