import { createLiquidityReader } from './liquidity';
import type { Liquidity } from './quoting';

const ledger = 'private.central.';
const other = 'private.dfsp-a.';

/** A reader over a fake ledger whose reads answer when the test says, on a clock the test moves. */
function setUp(maxAgeMs: number) {
  let nowMs = 0;
  const pending: Array<{ ledgerPrefix: string; answer: (liquidity: Liquidity) => void }> = [];
  const liquidity = createLiquidityReader({
    maxAgeMs,
    nowMs: () => nowMs,
    read: (ledgerPrefix) => new Promise((answer) => pending.push({ ledgerPrefix, answer })),
  });
  return {
    liquidity,
    pending,
    advance: (ms: number) => (nowMs += ms),
    /** Answers the oldest read still open. */
    answer: async (value: Liquidity) => {
      pending.shift()?.answer(value);
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

const available = (amount: bigint): Liquidity => ({ kind: 'ok', available: amount });

test('quotes asking while a read is in flight share it', async () => {
  const { liquidity, pending, answer } = setUp(200);
  const first = liquidity(ledger);
  const second = liquidity(ledger);
  expect(pending).toHaveLength(1);
  await answer(available(500n));
  await expect(first).resolves.toEqual(available(500n));
  await expect(second).resolves.toEqual(available(500n));
});

test('an answer is reused until maxAgeMs after its read started, then read again', async () => {
  const { liquidity, pending, advance, answer } = setUp(200);
  const first = liquidity(ledger);
  advance(50);
  await answer(available(500n));
  await first;
  advance(149);
  await expect(liquidity(ledger)).resolves.toEqual(available(500n));
  expect(pending).toHaveLength(0);
  advance(1);
  const fresh = liquidity(ledger);
  expect(pending).toHaveLength(1);
  await answer(available(100n));
  await expect(fresh).resolves.toEqual(available(100n));
});

test('a ledger that did not answer is asked again by the next quote', async () => {
  const { liquidity, pending, answer } = setUp(200);
  const failed = liquidity(ledger);
  await answer({ kind: 'unknown', message: 'connection refused' });
  await expect(failed).resolves.toEqual({ kind: 'unknown', message: 'connection refused' });
  const retried = liquidity(ledger);
  expect(pending).toHaveLength(1);
  await answer(available(7n));
  await expect(retried).resolves.toEqual(available(7n));
});

test('each ledger has its own answer', async () => {
  const { liquidity, pending } = setUp(200);
  void liquidity(ledger);
  void liquidity(other);
  expect(pending.map((read) => read.ledgerPrefix)).toEqual([ledger, other]);
});

test('maxAgeMs 0 reads for every quote', async () => {
  const { liquidity, pending } = setUp(0);
  void liquidity(ledger);
  void liquidity(ledger);
  expect(pending).toHaveLength(2);
});
