/** The ledger's own Prometheus metrics, read from its /metrics endpoint. */
import { findFreePort } from '../../src/platform/database';
import { newId, preimagePair, prepareRequest, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
let metricsUrl: string;

beforeAll(async () => {
  const port = await findFreePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  ledger = await startTestLedger({ metricsListen: `127.0.0.1:${port}` });
  const admin = ledger.client('admin');
  for (const name of ['alice', 'bob']) {
    await admin.createAccount({ name, owner: name, minimumBalanceUnlimited: false, disabled: false });
  }
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 1_000n, externalReference: 'test' });
});

afterAll(async () => {
  await ledger.stop();
});

/** The value of metric `name` whose labels include `labels`, if the exposition has it. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => present.includes(`${key}="${value}"`))) return Number(match[3]);
  }
  return undefined;
}

test('transfers by state and outstanding holds count what the database holds', async () => {
  const alice = ledger.client('alice');
  const executed = preimagePair();
  const first = prepareRequest({ amount: 100n, executionCondition: executed.condition });
  await alice.prepareTransfer(first);
  await ledger.client('bob').fulfillTransfer({ transferId: first.transferId, fulfillment: executed.fulfillment });
  await alice.prepareTransfer(prepareRequest({ amount: 30n }));
  await alice.prepareTransfer(prepareRequest({ amount: 20n }));

  const text = await (await fetch(metricsUrl)).text();
  expect(sample(text, 'interclear_ledger_transfers', { state: 'executed' })).toBe(1);
  expect(sample(text, 'interclear_ledger_transfers', { state: 'prepared' })).toBe(2);
  expect(sample(text, 'interclear_ledger_transfers', { state: 'rejected' })).toBeUndefined();
  expect(sample(text, 'interclear_ledger_holds_outstanding')).toBe(2);
  expect(sample(text, 'interclear_ledger_held_amount')).toBe(50);
});
