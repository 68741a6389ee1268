/**
 * One process per SPSP service: a second one on the same database is refused at start, and a
 * service that loses its instance lock to another process stops serving at once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient, findFreePort } from '../../src/platform/database';
import { instanceLockApplicationName } from '../../src/platform/instance-lock';
import { silentLogger } from '../../src/platform/logger';
import { createPaymentClient } from '../../src/spsp/client';
import type { SpspSettings } from '../../src/spsp/config';
import { spspInstanceLockKey } from '../../src/spsp/persistence';
import { startSpsp, type RunningSpsp } from '../../src/spsp/server';
import { advisoryLockHolders, createTestDatabase } from '../support/database';
import { startTestLedger, type TestLedger } from '../support/ledger';
import { spawnInterclear, stopAllProcesses, waitUntil } from '../support/processes';

jest.setTimeout(60_000);

let ledger: TestLedger;
let database: { url: string; drop(): Promise<void> };
let settings: SpspSettings;

beforeAll(async () => {
  ledger = await startTestLedger({ ilpPrefix: 'private.lock.', currencyCode: 'USD', scale: 2 });
  await ledger
    .client('admin')
    .createAccount({ name: 'alice', owner: 'spsp-a', minimumBalanceUnlimited: false, disabled: false });
  database = await createTestDatabase('spsp_instance');
  settings = {
    name: 'spsp-a',
    dfsp: 'dfsp-a',
    principal: 'spsp-a',
    listen: '127.0.0.1:0',
    ledgerEndpoint: ledger.ledger.address,
    // Never called here: no payment is sent.
    quotingEndpoint: '127.0.0.1:1',
    paymentRequestExpiryMs: 30_000,
    maxPaymentRequestExpiryMs: 60_000,
    destinationHoldMs: 3_000,
    secret: randomBytes(32),
    receivers: [],
    directory: [],
  };
});

afterAll(async () => {
  await ledger.stop();
  await database.drop().catch(() => undefined);
});

const start = (
  extra: { instanceLockTimeoutMs?: number; onInstanceLockLost?: (error: Error) => void; metricsListen?: string } = {},
) => startSpsp({ settings, databaseUrl: database.url, insecure: true, logger: silentLogger, ...extra });

/** The server process holding the SPSP service's instance lock in its database. */
const lockHolder = async () => (await advisoryLockHolders(database.url, spspInstanceLockKey))[0];

test('a second SPSP service on the same database waits for the first, then refuses to start', async () => {
  const metricsAddress = `127.0.0.1:${await findFreePort()}`;
  const first = await start({ metricsListen: metricsAddress });
  try {
    expect(await lockHolder()).toMatchObject({ application: instanceLockApplicationName('SPSP service') });
    const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    expect(metrics).toMatch(/^interclear_instance_lock_held({[^}]*})? 1$/m);
    await expect(start({ instanceLockTimeoutMs: 300 })).rejects.toThrow(
      'another process is running this SPSP service (its database is locked)',
    );
    // The refused start changed nothing: the first still serves.
    const payments = createPaymentClient(first.address, { principal: 'admin' });
    try {
      await expect(payments.getPayment({ paymentId: '00000000-0000-4000-8000-000000000000' })).rejects.toMatchObject({
        code: 5,
      });
    } finally {
      payments.close();
    }
  } finally {
    await first.stop();
  }
  // Stopped, it lets the next one start.
  expect(await lockHolder()).toBeUndefined();
  const next = await start({ instanceLockTimeoutMs: 300 });
  await next.stop();
});

test('a service whose lock another process takes (its connection was cut) stops serving and says so', async () => {
  const lost = jest.fn();
  let running: RunningSpsp | undefined = await start({ onInstanceLockLost: lost });
  const holder = await lockHolder();
  const other = createClient(database.url, 'spsp-instance-test');
  await other.connect();
  try {
    await other.query('select pg_terminate_backend($1), pg_advisory_lock($2)', [holder?.pid, spspInstanceLockKey]);
    await waitUntil('the loss reported', async () => (lost.mock.calls.length > 0 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect((lost.mock.calls[0][0] as Error).message).toContain('another process is running this SPSP service');
    const payments = createPaymentClient(running.address, { principal: 'admin' });
    try {
      await waitUntil(
        'the service to stop serving',
        async () => {
          try {
            await payments.getPayment({ paymentId: '00000000-0000-4000-8000-000000000000' });
          } catch (error) {
            return (error as { code?: number }).code === 14 ? true : undefined;
          }
          return undefined;
        },
        { timeoutMs: 10_000 },
      );
    } finally {
      payments.close();
    }
    await running.stop();
    running = undefined;
  } finally {
    await other.end();
    await running?.stop();
  }
});

test('`interclear spsp` whose lock another process takes exits with status 1 and says why', async () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'spsp-lock-'));
  const file = path.join(directory, 'spsp.json');
  writeFileSync(
    file,
    JSON.stringify({
      dfsp: 'dfsp-a',
      name: 'spsp-a',
      listen: '127.0.0.1:0',
      principal: 'spsp-a',
      ledger: ledger.ledger.address,
      connector: '127.0.0.1:1',
      receivers: [],
      directory: {},
    }),
  );
  const service = spawnInterclear('spsp', ['spsp', '--config', file, '--insecure', '--database-url', database.url], {
    INTERCLEAR_SPSP_SECRET: randomBytes(32).toString('hex'),
  });
  const other = createClient(database.url, 'spsp-instance-test');
  try {
    await service.waitForLog(/serving on/);
    const holder = await lockHolder();
    await other.connect();
    await other.query('select pg_terminate_backend($1), pg_advisory_lock($2)', [holder?.pid, spspInstanceLockKey]);
    await service.waitForLog(/exited: code 1\]/, { timeoutMs: 20_000 });
    expect(service.logs()).toContain('another process is running this SPSP service');
    expect(service.logs()).toMatch(/"level":60.*cannot go on: stopping/);
  } finally {
    await stopAllProcesses();
    await other.end().catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  }
});
