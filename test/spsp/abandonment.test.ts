/**
 * The abandonment time of an interrupted Pay: a payment recorded whose first transfer was never
 * prepared (the SPSP service died in between) is failed with PAYMENT_INTERRUPTED once it has
 * been pending for the configuration file's `paymentAbandonmentTime`, not before, and not after
 * the built-in 60 s when another time is configured. Real ledger, database and SPSP service; the
 * service's clock is injected, so no test waits for the time to pass.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ConfigError } from '../../src/platform/config';
import { silentLogger } from '../../src/platform/logger';
import { parseSpspConfig, type SpspSettings } from '../../src/spsp/config';
import { defaultSendingTiming } from '../../src/spsp/payments';
import { startSpsp, type RunningSpsp } from '../../src/spsp/server';
import { createTestDatabase } from '../support/database';
import { startTestLedger, type TestLedger } from '../support/ledger';

const fileContents = {
  dfsp: 'dfsp-a',
  listen: '127.0.0.1:0',
  principal: 'spsp-a',
  ledger: '127.0.0.1:1',
  connector: '127.0.0.1:1',
  secret: randomBytes(32).toString('hex'),
};

describe('paymentAbandonmentTime in the configuration file', () => {
  test('defaults to the 60 s the sending side has always used', () => {
    expect(parseSpspConfig(fileContents).paymentAbandonmentMs).toBe(60_000);
    expect(defaultSendingTiming.abandonedAfterMs).toBe(60_000);
  });

  test('takes a duration', () => {
    expect(parseSpspConfig({ ...fileContents, paymentAbandonmentTime: '2m' }).paymentAbandonmentMs).toBe(120_000);
  });

  test.each([['0s'], ['500ms'], ['soon'], [true]])('refuses %p, naming the key', (value) => {
    expect(() => parseSpspConfig({ ...fileContents, paymentAbandonmentTime: value })).toThrow(ConfigError);
    expect(() => parseSpspConfig({ ...fileContents, paymentAbandonmentTime: value })).toThrow(
      /^paymentAbandonmentTime: /,
    );
  });
});

describe('an SPSP service configured with a 90 s abandonment time', () => {
  const abandonmentMs = 90_000;
  let ledger: TestLedger;
  let database: { url: string; drop(): Promise<void> };
  let spsp: RunningSpsp;
  const startedAt = Date.now();
  let clockMs = startedAt;

  beforeAll(async () => {
    ledger = await startTestLedger();
    database = await createTestDatabase('spsp_abandonment');
    const settings: SpspSettings = parseSpspConfig({
      ...fileContents,
      ledger: ledger.ledger.address,
      paymentAbandonmentTime: '90s',
    });
    spsp = await startSpsp({
      settings,
      databaseUrl: database.url,
      insecure: true,
      logger: silentLogger,
      now: () => new Date(clockMs),
      // The test runs the reconciler itself, at the times it chooses.
      reconcileIntervalMs: 3_600_000,
    });
  });

  afterAll(async () => {
    await spsp?.stop();
    await ledger?.stop();
    await database?.drop().catch(() => undefined);
  });

  /** A payment recorded as Pay records it, by a service that died before preparing its transfer. */
  async function recordInterruptedPayment(): Promise<string> {
    const id = randomUUID();
    const result = await spsp.store.insertPayment(
      {
        id,
        senderAccount: 'alice',
        receiver: 'bob@dfsp-b',
        fixedAmount: 'destination',
        amount: 2_500n,
        data: Buffer.alloc(0),
        maximumSourceAmount: null,
      },
      { currencyCode: 'USD', scale: 2 },
      new Date(clockMs),
    );
    expect(result.inserted).toBe(true);
    return id;
  }

  async function stateAfter(elapsedMs: number, paymentId: string, recordedAtMs: number) {
    clockMs = recordedAtMs + elapsedMs;
    await spsp.sending.reconcileOverdue();
    return spsp.sending.getPayment(paymentId);
  }

  test('keeps the interrupted payment pending past the default 60 s, up to its 90 s', async () => {
    const recordedAtMs = clockMs;
    const paymentId = await recordInterruptedPayment();
    expect((await stateAfter(defaultSendingTiming.abandonedAfterMs + 1_000, paymentId, recordedAtMs)).state).toBe(
      'pending',
    );
    expect((await stateAfter(abandonmentMs - 1_000, paymentId, recordedAtMs)).state).toBe('pending');

    const failed = await stateAfter(abandonmentMs + 1_000, paymentId, recordedAtMs);
    expect(failed.state).toBe('failed');
    expect(failed.failure?.reason).toBe('PAYMENT_INTERRUPTED');
    expect(failed.transferId).toBeNull();
  });
});
