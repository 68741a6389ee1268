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
  const second = prepareRequest({ amount: 20n });
  await alice.prepareTransfer(second);
  // A repeated prepare changes nothing, and counts nothing.
  await alice.prepareTransfer(second);

  const scrape = async () => (await fetch(metricsUrl)).text();
  let text = await scrape();
  expect(sample(text, 'interclear_ledger_transfers', { state: 'executed' })).toBe(1);
  expect(sample(text, 'interclear_ledger_transfers', { state: 'prepared' })).toBe(2);
  expect(sample(text, 'interclear_ledger_transfers', { state: 'rejected' })).toBe(0);
  expect(sample(text, 'interclear_ledger_holds_outstanding')).toBe(2);
  expect(sample(text, 'interclear_ledger_held_amount')).toBe(50);

  // A rejection by the receiver, and an expiry by the sweeper, both end rejected; scrapes at once
  // and in a row count each transfer once.
  await ledger.client('bob').rejectTransfer({
    transferId: second.transferId,
    ilpError: {
      code: 'F99',
      name: 'Application Error',
      message: 'not wanted',
      triggeredBy: 'test.ledger.bob',
      forwardedBy: [],
      data: Buffer.alloc(0),
    },
  });
  await alice.prepareTransfer(prepareRequest({ amount: 5n, expiryTime: new Date(Date.now() + 200) }));
  const deadline = Date.now() + 10_000;
  do {
    await new Promise((resolve) => setTimeout(resolve, 100));
    text = (await Promise.all([scrape(), scrape()]))[1];
  } while (sample(text, 'interclear_ledger_transfers', { state: 'rejected' }) !== 2 && Date.now() < deadline);
  text = await scrape();
  expect(sample(text, 'interclear_ledger_transfers', { state: 'rejected' })).toBe(2);
  expect(sample(text, 'interclear_ledger_transfers', { state: 'executed' })).toBe(1);
  expect(sample(text, 'interclear_ledger_transfers', { state: 'prepared' })).toBe(1);
  expect(sample(text, 'interclear_ledger_transfers_expired')).toBe(1);
  expect(sample(text, 'interclear_ledger_holds_outstanding')).toBe(1);
  // The counts agree with the table itself.
  const { rows } = await ledger.ledger.pool.query<{ state: string; count: bigint }>(
    'select state, count(*) as count from transfers group by state',
  );
  for (const row of rows)
    expect(sample(text, 'interclear_ledger_transfers', { state: row.state })).toBe(Number(row.count));
});
